"""The write path as plain functions: a job's documents from the catalog into the vector store.

No Celery and no HTTP here: workers/tasks.py and the in-process queue call `run_job`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ingest.queue import JobQueue
from ingest.splitter import ChunkSpan, HuggingFaceTokenizer, WordPieceCounts, chunk_document
from retrieval.catalog import Catalog, CollectionRecord, DocumentInput, DocumentRecord, JobRecord
from retrieval.embedder import Embedder
from retrieval.errors import NotFound, Unavailable
from retrieval.lexical import LexicalEncoder
from retrieval.store.base import ChunkPayload, ChunkPoint, VectorStore, point_id
from retrieval.text import clean_line, clean_text

logger = logging.getLogger(__name__)

UPSERT_BATCH_CHUNKS = 64
"""Chunks embedded and written per step: bounds memory and sets the progress granularity."""


class JobInterrupted(Exception):
    """The process is stopping: the job stays 'running' and is run again after a restart."""


def never_stop() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class IngestContext:
    """What the write path needs, built once per process (see retrieval/services.py)."""

    catalog: Catalog
    embedder: Embedder
    store: VectorStore
    tokenizer: HuggingFaceTokenizer
    """Counts the model's word pieces for chunk budgets (not the one `embedder` encodes with)."""
    lexical: LexicalEncoder


@dataclass(frozen=True, slots=True)
class DocumentPlan:
    """What indexing a document will write: its chunks and what the model makes of its text."""

    document: DocumentRecord
    chunks: list[ChunkSpan]
    word_pieces: WordPieceCounts
    title: str | None
    """The cleaned title that heads every chunk's embedded text, when it fits (see below)."""

    def indexed_text(self, chunk: ChunkSpan) -> str:
        """What is embedded and tokenised for BM25: the title, then the chunk."""
        return f"{self.title}\n{chunk.text}" if self.title else chunk.text


TITLE_SHARE_OF_BUDGET = 4
"""A title heads each chunk when it takes at most 1/4 of the chunk budget's word pieces."""


def submit_documents(
    catalog: Catalog, job_queue: JobQueue, collection: str, documents: Sequence[DocumentInput]
) -> JobRecord:
    """Store the documents' text in the catalog, then queue the job that will index them.

    If the queue cannot take the job, the job is marked failed (so nobody waits on it) and
    Unavailable propagates; the stored text stays, and submitting again is safe.
    """
    job = catalog.stage_documents(collection, documents)
    try:
        job_queue.submit(job.id)
    except Unavailable as exc:
        catalog.fail_job(job.id, error=str(exc))
        raise
    return job


def plan_document(
    document: DocumentRecord, collection: CollectionRecord, tokenizer: HuggingFaceTokenizer
) -> DocumentPlan:
    """Clean a document, split it into chunks within the collection's token budget, and count
    the word pieces of its text that the model cannot read (the collection's language check).

    A title carries meaning a chunk may lack (a product's name, a paper's subject), so it is
    embedded with every chunk when it is short enough; the chunks are then packed to the
    budget less the title's word pieces, so that the model never truncates what it reads.
    """
    text = clean_text(document.text)
    title = clean_line(document.title) if document.title else ""
    title_tokens = tokenizer.count(title) + 1 if title else 0
    if title_tokens * TITLE_SHARE_OF_BUDGET > collection.chunk_max_tokens:
        title, title_tokens = "", 0
    chunks = chunk_document(
        text,
        tokenizer=tokenizer,
        max_tokens=collection.chunk_max_tokens - title_tokens,
        overlap_sentences=collection.chunk_overlap_sentences,
    )
    return DocumentPlan(
        document=document,
        chunks=chunks,
        word_pieces=tokenizer.word_piece_counts(text),
        title=title or None,
    )


def run_job(
    job_id: str,
    context: IngestContext,
    *,
    final_attempt: bool,
    should_stop: Callable[[], bool] = never_stop,
) -> None:
    """Run a job; on a backing service outage, re-raise for a retry or, at the last try, fail it.

    Callers (a Celery task, the in-process queue) own the retry schedule; this function owns
    what a failure means for the job.
    """
    try:
        ingest_job(job_id, context, should_stop=should_stop)
    except JobInterrupted:
        raise
    except Unavailable as exc:
        if not final_attempt:
            raise
        logger.exception("job %s failed: a backing service stayed unavailable", job_id)
        context.catalog.fail_job(job_id, error=f"gave up after retries: {exc}")
    except Exception as exc:
        logger.exception("job %s failed", job_id)
        error = f"{type(exc).__name__}: {exc}"
        context.catalog.fail_job(job_id, error=error)


def ingest_job(
    job_id: str, context: IngestContext, *, should_stop: Callable[[], bool] = never_stop
) -> None:
    """Index every document of a job.

    1. load the job and its collection; plan each document: clean ▶ split on punctuation
       ▶ pack chunks; mark the job running with the number of chunks to write
    2. in batches of chunks across documents: embed ▶ encode the lexical vectors ▶ upsert
       points; then per document: drop the points of stale chunks ▶ mark it indexed
    3. mark the job succeeded, or failed with the errors of the documents that failed

    A document whose text is already what the store holds (same content hash) is a no-op.
    Unavailable propagates (the caller retries); any other error fails only its document.
    `should_stop` is asked before each batch; JobInterrupted leaves the job to a restart,
    which skips the documents already indexed.
    """
    catalog = context.catalog
    try:
        job = catalog.get_job(job_id)
    except NotFound:
        logger.warning("job %s vanished (its collection was deleted); nothing to do", job_id)
        return
    if job.status in ("succeeded", "failed"):
        return
    collection = catalog.get_collection(job.collection)
    document_ids = catalog.job_document_ids(job_id)

    plans = [
        plan_document(document, collection, context.tokenizer)
        for document in _documents_to_index(catalog, collection.name, document_ids)
    ]
    catalog.start_job(job_id, chunks_total=sum(len(plan.chunks) for plan in plans))
    progress = _JobProgress(catalog, job_id, documents_done=len(document_ids) - len(plans))

    failures: list[str] = []
    for group in _batches(plans, UPSERT_BATCH_CHUNKS):
        if should_stop():
            raise JobInterrupted(f"job {job_id} interrupted by shutdown")
        chunks_before = progress.chunks_done
        try:
            _index_documents(context, collection.name, group, progress)
        except Unavailable:
            raise
        except Exception as exc:
            if len(group) == 1:
                failures.append(_fail_document(context, collection.name, group[0], exc, progress))
                continue
            # Run the batch's documents one by one, so that only the culprit fails.
            progress.chunks_done = chunks_before
            for plan in group:
                try:
                    _index_documents(context, collection.name, [plan], progress)
                except Unavailable:
                    raise
                except Exception as document_exc:
                    failures.append(
                        _fail_document(context, collection.name, plan, document_exc, progress)
                    )

    if failures:
        summary = f"{len(failures)} of {len(document_ids)} documents failed; " + "; ".join(failures)
        catalog.fail_job(job_id, error=summary)
    else:
        catalog.finish_job(job_id)


class _JobProgress:
    """Documents and chunks done so far, written to the job's row as they change."""

    def __init__(self, catalog: Catalog, job_id: str, *, documents_done: int) -> None:
        self._catalog = catalog
        self._job_id = job_id
        self.documents_done = documents_done
        self.chunks_done = 0
        self._record()

    def add(self, *, documents: int = 0, chunks: int = 0) -> None:
        self.documents_done += documents
        self.chunks_done += chunks
        self._record()

    def _record(self) -> None:
        self._catalog.record_job_progress(
            self._job_id, documents_done=self.documents_done, chunks_done=self.chunks_done
        )


def _batches(plans: Sequence[DocumentPlan], max_chunks: int) -> Iterator[list[DocumentPlan]]:
    """Consecutive documents whose chunks fit one embedding batch (a longer one goes alone)."""
    batch: list[DocumentPlan] = []
    size = 0
    for plan in plans:
        if batch and size + len(plan.chunks) > max_chunks:
            yield batch
            batch, size = [], 0
        batch.append(plan)
        size += len(plan.chunks)
    if batch:
        yield batch


def _fail_document(
    context: IngestContext,
    collection: str,
    plan: DocumentPlan,
    exc: Exception,
    progress: _JobProgress,
) -> str:
    logger.error("document %s failed", plan.document.id, exc_info=exc)
    error = f"{type(exc).__name__}: {exc}"
    context.catalog.mark_document_failed(collection, plan.document.id, error=error)
    progress.add(documents=1)
    return f"{plan.document.id}: {error}"


def _documents_to_index(
    catalog: Catalog, collection: str, document_ids: Sequence[str]
) -> list[DocumentRecord]:
    """The job's documents that still exist and whose current text is not what is indexed."""
    pending: list[DocumentRecord] = []
    for document_id in dict.fromkeys(document_ids):
        try:
            document = catalog.get_document(collection, document_id)
        except NotFound:
            continue
        if document.indexed_hash != document.content_hash:
            pending.append(document)
    return pending


def _index_documents(
    context: IngestContext,
    collection: str,
    plans: Sequence[DocumentPlan],
    progress: _JobProgress,
) -> None:
    """Embed and write the documents' chunks in batches, then drop their stale points."""
    chunks = [(plan, index, chunk) for plan in plans for index, chunk in enumerate(plan.chunks)]
    for batch_start in range(0, len(chunks), UPSERT_BATCH_CHUNKS):
        batch = chunks[batch_start : batch_start + UPSERT_BATCH_CHUNKS]
        texts = [plan.indexed_text(chunk) for plan, _, chunk in batch]
        vectors = context.embedder.encode(texts)
        sparse_vectors = context.lexical.encode_documents(texts)
        points = [
            ChunkPoint(
                id=point_id(collection, plan.document.id, index),
                vector=vector.tolist(),
                sparse=sparse,
                payload=ChunkPayload(
                    document_id=plan.document.id,
                    chunk_index=index,
                    text=chunk.text,
                    start=chunk.start,
                    end=chunk.end,
                    title=plan.document.title,
                    source=plan.document.source,
                    metadata=plan.document.metadata,
                ),
            )
            for (plan, index, chunk), vector, sparse in zip(
                batch, vectors, sparse_vectors, strict=True
            )
        ]
        context.store.upsert(collection, points)
        progress.add(chunks=len(batch))
    for plan in plans:
        context.store.delete_document(collection, plan.document.id, from_chunk=len(plan.chunks))
        context.catalog.mark_document_indexed(
            collection,
            plan.document.id,
            indexed_hash=plan.document.content_hash,
            chunk_count=len(plan.chunks),
            word_pieces=plan.word_pieces.total,
            unknown_word_pieces=plan.word_pieces.unknown,
        )
        progress.add(documents=1)
