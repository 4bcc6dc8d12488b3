"""The write path as plain functions: a job's documents from the catalog into the vector store.

No Celery and no HTTP here: workers/tasks.py and the in-process queue call `run_job`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.queue import JobQueue
from ingest.splitter import ChunkSpan, Tokenizer, chunk_document
from retrieval.catalog import Catalog, CollectionRecord, DocumentInput, DocumentRecord, JobRecord
from retrieval.embedder import Embedder
from retrieval.errors import NotFound, Unavailable
from retrieval.store.base import ChunkPayload, ChunkPoint, VectorStore, point_id
from retrieval.text import clean_text

logger = logging.getLogger(__name__)

UPSERT_BATCH_CHUNKS = 64
"""Chunks embedded and written per step: bounds memory and sets the progress granularity."""

MAX_ERROR_CHARS = 4_000


@dataclass(frozen=True, slots=True)
class IngestContext:
    """What the write path needs, built once per process (see retrieval/services.py)."""

    catalog: Catalog
    embedder: Embedder
    store: VectorStore
    tokenizer: Tokenizer
    """Counts the model's word pieces for chunk budgets (not the one `embedder` encodes with)."""


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
        catalog.fail_job(job.id, error=str(exc)[:MAX_ERROR_CHARS])
        raise
    return job


def chunk_text(
    document_text: str, collection: CollectionRecord, tokenizer: Tokenizer
) -> list[ChunkSpan]:
    """Clean a document and split it into chunks within the collection's token budget."""
    return chunk_document(
        clean_text(document_text),
        tokenizer=tokenizer,
        max_tokens=collection.chunk_max_tokens,
        overlap_sentences=collection.chunk_overlap_sentences,
    )


def run_job(job_id: str, context: IngestContext, *, final_attempt: bool) -> None:
    """Run a job; on a backing service outage, re-raise for a retry or, at the last try, fail it.

    Callers (a Celery task, the in-process queue) own the retry schedule; this function owns
    what a failure means for the job.
    """
    try:
        ingest_job(job_id, context)
    except Unavailable as exc:
        if not final_attempt:
            raise
        logger.exception("job %s failed: a backing service stayed unavailable", job_id)
        context.catalog.fail_job(job_id, error=f"gave up after retries: {exc}"[:MAX_ERROR_CHARS])
    except Exception as exc:
        logger.exception("job %s failed", job_id)
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        context.catalog.fail_job(job_id, error=error)


def ingest_job(job_id: str, context: IngestContext) -> None:
    """Index every document of a job.

    1. load the job and its collection; count the chunks to write; mark the job running
    2. per document: clean ▶ split on punctuation ▶ pack chunks ▶ embed in batches
       ▶ upsert points ▶ drop the points of stale chunks ▶ mark the document indexed
    3. mark the job succeeded, or failed with the errors of the documents that failed

    A document whose text is already what the store holds (same content hash) is a no-op.
    Unavailable propagates (the caller retries); any other error fails only its document.
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

    pending = _documents_to_index(catalog, collection.name, document_ids)
    planned = {doc.id: chunk_text(doc.text, collection, context.tokenizer) for doc in pending}
    chunks_total = sum(len(chunks) for chunks in planned.values())
    catalog.start_job(job_id, chunks_total=chunks_total)

    failures: list[str] = []
    chunks_done = 0
    documents_done = len(document_ids) - len(pending)
    catalog.record_job_progress(job_id, documents_done=documents_done, chunks_done=0)
    for document in pending:
        chunks = planned[document.id]
        try:
            chunks_done = _index_document(
                context,
                collection,
                document,
                chunks,
                job_id,
                documents_done=documents_done,
                chunks_done=chunks_done,
            )
        except Unavailable:
            raise
        except Exception as exc:
            logger.exception("document %s of job %s failed", document.id, job_id)
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
            catalog.mark_document_failed(collection.name, document.id, error=error)
            failures.append(f"{document.id}: {error}")
        documents_done += 1
        catalog.record_job_progress(job_id, documents_done=documents_done, chunks_done=chunks_done)

    if failures:
        summary = f"{len(failures)} of {len(document_ids)} documents failed; " + "; ".join(failures)
        catalog.fail_job(job_id, error=summary[:MAX_ERROR_CHARS])
    else:
        catalog.finish_job(job_id)


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


def _index_document(
    context: IngestContext,
    collection: CollectionRecord,
    document: DocumentRecord,
    chunks: Sequence[ChunkSpan],
    job_id: str,
    *,
    documents_done: int,
    chunks_done: int,
) -> int:
    """Embed and write one document's chunks, then drop its stale points; returns chunks_done."""
    for batch_start in range(0, len(chunks), UPSERT_BATCH_CHUNKS):
        batch = chunks[batch_start : batch_start + UPSERT_BATCH_CHUNKS]
        vectors = context.embedder.encode([chunk.text for chunk in batch])
        points = [
            ChunkPoint(
                id=point_id(collection.name, document.id, index),
                vector=vector.tolist(),
                payload=ChunkPayload(
                    document_id=document.id,
                    chunk_index=index,
                    text=chunk.text,
                    start=chunk.start,
                    end=chunk.end,
                    title=document.title,
                    source=document.source,
                    metadata=document.metadata,
                ),
            )
            for index, (chunk, vector) in enumerate(zip(batch, vectors, strict=True), batch_start)
        ]
        context.store.upsert(collection.name, points)
        chunks_done += len(batch)
        context.catalog.record_job_progress(
            job_id, documents_done=documents_done, chunks_done=chunks_done
        )
    context.store.delete_document(collection.name, document.id, from_chunk=len(chunks))
    context.catalog.mark_document_indexed(
        collection.name,
        document.id,
        indexed_hash=document.content_hash,
        chunk_count=len(chunks),
    )
    return chunks_done
