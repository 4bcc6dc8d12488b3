"""The write path as plain functions: a job's documents from the catalog into the vector store.

No Celery and no HTTP here: workers/tasks.py and the in-process queue call `run_job`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy

from ingest.queue import JobQueue
from ingest.splitter import ChunkSpan, chunk_document
from retrieval.catalog import (
    Catalog,
    CollectionRecord,
    DocumentInput,
    DocumentRecord,
    IndexedDocument,
    JobKind,
    JobRecord,
    JobStatus,
)
from retrieval.errors import NotFound, Unavailable
from retrieval.lexical import LexicalEncoder
from retrieval.metrics import INGEST_JOBS_FINISHED
from retrieval.models.base import EmbeddingModel
from retrieval.models.registry import ModelRegistry
from retrieval.models.tokenizer import WordPieceCounts
from retrieval.services import Services
from retrieval.store.base import ChunkPayload, ChunkPoint, VectorStore, point_id
from retrieval.terms import TermMap
from retrieval.text import clean_line, clean_text

logger = logging.getLogger(__name__)

UPSERT_BATCH_CHUNKS = 64
"""Chunks embedded and written per step: bounds memory and sets the progress granularity."""

FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED)


class JobInterrupted(Exception):
    """The job stopped between documents, because the process is stopping or the queue lets
    other jobs run first: it stays 'running' and is run again (after a restart, or after them)."""


class TargetRetired(Exception):
    """The store collection a job writes to is no longer one to write: the job stops."""


class CollectionRebuilt(TargetRetired):
    """The store collection a job writes to was retired by a completed re-index."""


class ReindexGivenUp(TargetRetired):
    """The re-index a job was filling was given up while it ran (another of its parts
    failed): there is nothing left to fill."""


class ReindexSwappedIn(TargetRetired):
    """The re-index a job was filling was completed by another run of it (a job delivered
    again while it still ran): its store collection now answers searches, and what this run
    planned may be older than what ingests have written there since."""


def never_stop() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class IngestContext:
    """What the write path needs: the services' parts, taken by `of` wherever a job is run or
    submitted (an API request, a Celery task, the in-process queue)."""

    catalog: Catalog
    models: ModelRegistry
    store: VectorStore
    lexical: LexicalEncoder

    @classmethod
    def of(cls, services: Services) -> IngestContext:
        return cls(
            catalog=services.catalog,
            models=services.models,
            store=services.store,
            lexical=services.lexical,
        )


@dataclass(frozen=True, slots=True)
class IndexTarget:
    """Where a job writes and how: a store collection and what its vectors are made with."""

    collection: CollectionRecord
    """The collection as the vectors being written will serve it (chunking, model, name)."""
    model: EmbeddingModel
    term_map: TermMap
    reindex_job: str | None
    """The re-index that fills this store collection, which records what is written for it
    (catalog.record_reindexed); None: searches read it now, and the documents' catalog rows
    follow what is written."""
    document_vectors: bool
    """Whether the store collection takes document-level vectors (one made before them does
    not, until a re-index rebuilds it)."""

    @property
    def store_name(self) -> str:
        return self.collection.store_name

    @classmethod
    def of(
        cls,
        collection: CollectionRecord,
        context: IngestContext,
        *,
        reindex_job: str | None = None,
    ) -> IndexTarget:
        return cls(
            collection=collection,
            model=context.models.get(collection.model),
            term_map=TermMap(collection.term_map),
            reindex_job=reindex_job,
            document_vectors=context.store.has_document_vectors(collection.store_name),
        )


@dataclass(frozen=True, slots=True)
class DocumentPlan:
    """What indexing a document will write: its chunks and what the model makes of its text."""

    document: DocumentRecord
    chunks: list[ChunkSpan]
    word_pieces: WordPieceCounts
    title: str | None
    """The cleaned title that heads every chunk's embedded text, when it fits (see below)."""

    def indexed_text(self, chunk: ChunkSpan, term_map: TermMap) -> str:
        """What is embedded and tokenised for BM25: the title, then the chunk, in the words of
        the collection's term map (the same rewrite its queries get; hits keep the original)."""
        return term_map.apply(f"{self.title}\n{chunk.text}" if self.title else chunk.text)

    @property
    def indexed(self) -> IndexedDocument:
        return IndexedDocument(
            content_hash=self.document.content_hash,
            chunk_count=len(self.chunks),
            word_pieces=self.word_pieces.total,
            unknown_word_pieces=self.word_pieces.unknown,
        )


TITLE_SHARE_OF_BUDGET = 4
"""A title heads each chunk when it takes at most 1/4 of the chunk budget's word pieces."""


def submit_documents(
    catalog: Catalog, job_queue: JobQueue, collection: str, documents: Sequence[DocumentInput]
) -> JobRecord:
    """Store the documents' text in the catalog, then queue the job that will index them (or
    its parts, when there are more documents than a part holds).

    If the queue cannot take a job, it and the parts not sent yet are marked failed (so that
    nobody waits on them) and Unavailable propagates; the stored text stays, and submitting
    again is safe.
    """
    job = catalog.stage_documents(collection, documents)
    _submit_runnable(catalog, job_queue, job)
    return job


def submit_reindex(context: IngestContext, job_queue: JobQueue, job: JobRecord) -> None:
    """Queue a re-index job (or its parts); if the queue cannot take one, give the re-index
    up and re-raise (parts sent already find it given up when they run)."""
    try:
        _submit_runnable(context.catalog, job_queue, job)
    except Unavailable as exc:
        _fail_job(context, job, str(exc))
        raise


def _submit_runnable(catalog: Catalog, job_queue: JobQueue, job: JobRecord) -> None:
    """Queue the job, or its parts; when the queue cannot take one, mark it and the parts not
    sent yet failed and re-raise Unavailable."""
    runnable = catalog.runnable_job_ids(job)
    for sent, job_id in enumerate(runnable):
        try:
            job_queue.submit(job_id)
        except Unavailable as exc:
            for unsent in runnable[sent:]:
                catalog.fail_job(unsent, error=str(exc))
            raise


def plan_document(document: DocumentRecord, target: IndexTarget) -> DocumentPlan:
    """Clean a document, split it into chunks within the collection's token budget, and count
    the tokens of its text that the model cannot read (the collection's language check).

    A title carries meaning a chunk may lack (a product's name, a paper's subject), so it is
    embedded with every chunk when it is short enough; the chunks are then packed to the
    budget less the title's tokens, so that the model never truncates what it reads.
    """
    tokenizer = target.model.tokenizer
    budget = target.collection.chunk_max_tokens
    text = clean_text(document.text)
    title = clean_line(document.title) if document.title else ""
    title_tokens = tokenizer.count(title) + 1 if title else 0
    if title_tokens * TITLE_SHARE_OF_BUDGET > budget:
        title, title_tokens = "", 0
    chunks = chunk_document(
        text,
        tokenizer=tokenizer,
        max_tokens=budget - title_tokens,
        overlap_sentences=target.collection.chunk_overlap_sentences,
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
    should_yield: Callable[[], bool] = never_stop,
) -> None:
    """Run a job of either kind; on a backing service outage, re-raise for a retry or, at the
    last try, fail it.

    Callers (a Celery task, the in-process queue) own the retry schedule; this function owns
    what a failure means for the job: a failed re-index is given up, the collection keeps
    its vectors and settings.

    Both callables are asked between batches, and a true answer raises JobInterrupted:
    `should_stop` when the process is stopping, `should_yield` when the job has had its turn
    and others wait (asked from the second batch on: each turn writes something, however long
    its planning took). Either kind resumes from what it recorded.
    """
    try:
        job = context.catalog.get_job(job_id)
    except NotFound:
        logger.warning("job %s vanished (its collection was deleted); nothing to do", job_id)
        return
    if job.status in FINISHED:
        return  # delivered again after it ended: nothing to do, nothing to count
    if job.parts:
        logger.warning("job %s is made of %d parts, which run themselves", job_id, job.parts)
        return
    logger.info("job %s: %s of collection %s runs", job_id, job.kind.value, job.collection)
    outcome = JobStatus.FAILED  # unless the job's own path says otherwise
    try:
        run = reindex_job if job.kind is JobKind.REINDEX else ingest_job
        outcome = run(job, context, should_stop=should_stop, should_yield=should_yield)
    except JobInterrupted:
        raise
    except ReindexSwappedIn:
        logger.warning("job %s: another run of it swapped its re-index in", job_id)
        context.catalog.finish_job(job_id)
        outcome = JobStatus.SUCCEEDED
    except ReindexGivenUp:
        logger.warning("job %s: its re-index was given up while it ran", job_id)
        context.catalog.fail_job(
            job_id, error="the re-index was given up while this job ran (another part failed)"
        )
    except NotFound:
        if not _job_exists(context.catalog, job_id):
            logger.warning("job %s vanished with its collection while it ran", job_id)
            return
        logger.exception("job %s failed", job_id)
        _fail_job(context, job, "its collection or a document vanished while it ran")
    except Unavailable as exc:
        if not final_attempt:
            raise
        logger.exception("job %s failed: a backing service stayed unavailable", job_id)
        _fail_job(context, job, f"gave up after retries: {exc}")
    except Exception as exc:
        logger.exception("job %s failed", job_id)
        _fail_job(context, job, f"{type(exc).__name__}: {exc}")
    INGEST_JOBS_FINISHED.labels(kind=job.kind.value, outcome=outcome.value).inc()
    logger.info("job %s: %s", job.id, outcome.value)


def _job_exists(catalog: Catalog, job_id: str) -> bool:
    try:
        catalog.get_job(job_id)
    except NotFound:
        return False
    return True


def _fail_job(context: IngestContext, job: JobRecord, error: str) -> None:
    if job.kind is JobKind.REINDEX:
        abandoned = context.catalog.abandon_reindex(job.collection, job.whole_id)
        if abandoned is not None:
            context.store.drop_collection(abandoned)
        error = f"re-index given up, the collection keeps its vectors and settings: {error}"
    context.catalog.fail_job(job.id, error=error)


def ingest_job(
    job: JobRecord,
    context: IngestContext,
    *,
    should_stop: Callable[[], bool] = never_stop,
    should_yield: Callable[[], bool] = never_stop,
) -> JobStatus:
    """Index every document of a job.

    1. load the collection and the model it is embedded with; plan each document: clean
       ▶ split on punctuation ▶ pack chunks; mark the job running with its chunk count
    2. in batches of chunks across documents: apply the term map ▶ embed ▶ encode the
       lexical vectors ▶ upsert points; then per document: drop the points of stale chunks
       ▶ mark it indexed
    3. mark the job succeeded, or failed with the errors of the documents that failed (the
       status returned)

    A document whose text is already what the store holds (same content hash) is a no-op.
    Unavailable propagates (the caller retries); any other error fails only its document.
    `should_stop` and `should_yield` are asked between batches (see run_job); JobInterrupted
    leaves the job to run again, which skips the documents already indexed. When a re-index
    completes meanwhile, its vectors hold these documents' current text already, and the job
    ends there.
    """
    catalog = context.catalog
    collection = catalog.get_collection(job.collection)
    target = IndexTarget.of(collection, context)
    document_ids = catalog.job_document_ids(job.id)

    plans = [
        plan_document(document, target)
        for document in _documents_to_index(catalog, collection.name, document_ids)
    ]
    catalog.start_job(job.id, chunks_total=sum(len(plan.chunks) for plan in plans))
    progress = _JobProgress(catalog, job.id, documents_done=len(document_ids) - len(plans))
    try:
        failures = _index_plans(
            context, target, plans, progress, should_stop=should_stop, should_yield=should_yield
        )
    except CollectionRebuilt:
        logger.info("job %s: a re-index of %s took its documents over", job.id, collection.name)
        failures = []
    if failures:
        summary = f"{len(failures)} of {len(document_ids)} documents failed; " + "; ".join(failures)
        catalog.fail_job(job.id, error=summary)
        return JobStatus.FAILED
    catalog.finish_job(job.id)
    return JobStatus.SUCCEEDED


def reindex_job(
    job: JobRecord,
    context: IngestContext,
    *,
    should_stop: Callable[[], bool] = never_stop,
    should_yield: Callable[[], bool] = never_stop,
) -> JobStatus:
    """Re-embed the documents of a collection into its next store collection, then swap.

    1. load the re-index this job runs (its own, or the one it is a part of): the settings it
       builds with (model, term map, chunking) and the store collection it fills; searches
       keep using the current one meanwhile
    2. a part indexes its share of the documents (catalog.start_reindex split them), and
       unless it is the last part to end, ends there
    3. the last part, or a re-index without parts, runs the compare-and-swap in the catalog:
       when what the re-index recorded is exactly the documents stored now, the collection
       switches to the new vectors and settings; when documents were added, changed or
       deleted meanwhile, index the difference and try again
    4. drop the retired store collection

    What each document got is recorded in the catalog as it is written, so a re-index
    interrupted (shutdown, a killed worker, its turn over) skips those documents when it runs
    again. Any document that fails fails the whole re-index (run_job gives it up and the
    collection keeps what it had): a collection never half-switches.
    """
    catalog = context.catalog
    reindex_id = job.whole_id
    collection = catalog.get_collection(job.collection)
    reindex = collection.reindex
    if reindex is None or reindex.job_id != reindex_id:
        logger.warning("job %s: the re-index of %s was given up", job.id, collection.name)
        catalog.fail_job(job.id, error="the re-index was given up before this job ran")
        return JobStatus.FAILED
    built_with = collection.built_with(reindex.settings, store_name=reindex.store_name)
    context.store.create_collection(
        built_with.store_name, dimension=context.models.get(built_with.model).dimension
    )
    target = IndexTarget.of(built_with, context, reindex_job=reindex_id)
    catalog.start_job(job.id, chunks_total=0)
    progress = _JobProgress(catalog, job.id, documents_done=0)

    def index(document_ids: Sequence[str]) -> None:
        plans = [
            plan_document(document, target)
            for document in catalog.get_documents(collection.name, document_ids)
        ]
        progress.add_total(chunks=sum(len(plan.chunks) for plan in plans))
        failures = _index_plans(
            context, target, plans, progress, should_stop=should_stop, should_yield=should_yield
        )
        if failures:
            raise RuntimeError(f"{len(failures)} documents failed: " + "; ".join(failures))

    current = catalog.document_hashes(collection.name)
    recorded = catalog.reindexed_documents(reindex_id)
    share = catalog.job_document_ids(job.id) if job.parent_id is not None else list(current)
    pending = _unrecorded(share, current, recorded)
    done = set(share).intersection(current).difference(pending)
    done_chunks = sum(recorded[document_id].chunk_count for document_id in done)
    progress.add_total(chunks=done_chunks)
    progress.add(documents=len(done), chunks=done_chunks)
    index(pending)
    if job.parent_id is not None and not catalog.finish_reindex_part(job.id):
        return JobStatus.SUCCEEDED
    while not _swapped_in(catalog, collection.name, built_with.store_name):
        current = catalog.document_hashes(collection.name)
        recorded = catalog.reindexed_documents(reindex_id)
        gone = [document_id for document_id in recorded if document_id not in current]
        for document_id in gone:
            context.store.delete_document(target.store_name, document_id)
        if gone:
            catalog.forget_reindexed(reindex_id, gone)
        index(_unrecorded(list(current), current, recorded))
        try:
            retired = catalog.complete_reindex(collection.name, reindex_id)
        except NotFound:
            if _swapped_in(catalog, collection.name, built_with.store_name):
                break
            raise
        if retired is not None:
            context.store.drop_collection(retired)
            break
    catalog.finish_job(job.id)
    return JobStatus.SUCCEEDED


def _swapped_in(catalog: Catalog, collection: str, store_name: str) -> bool:
    """Whether the re-index filling `store_name` is already the collection's: a job delivered
    again while it still ran (its heartbeat late) has two runs, and the one that comes second
    to the swap finds it done and ends succeeded, like the first."""
    return catalog.get_collection(collection).store_name == store_name


def _unrecorded(
    document_ids: Sequence[str],
    current: Mapping[str, str],
    recorded: Mapping[str, IndexedDocument],
) -> list[str]:
    """Those of the documents that exist (`current`: id -> content hash) and whose current
    text the re-index has not recorded as written."""
    return [
        document_id
        for document_id in document_ids
        if document_id in current
        and (
            document_id not in recorded
            or recorded[document_id].content_hash != current[document_id]
        )
    ]


class _JobProgress:
    """Documents and chunks done so far, written to the job's row as they change."""

    def __init__(self, catalog: Catalog, job_id: str, *, documents_done: int) -> None:
        self._catalog = catalog
        self._job_id = job_id
        self.documents_done = documents_done
        self.chunks_done = 0
        self.chunks_total: int | None = None
        self._record()

    def add(self, *, documents: int = 0, chunks: int = 0) -> None:
        self.documents_done += documents
        self.chunks_done += chunks
        self._record()

    def add_total(self, *, chunks: int) -> None:
        self.chunks_total = (self.chunks_total or 0) + chunks
        self._record()

    def _record(self) -> None:
        self._catalog.record_job_progress(
            self._job_id,
            documents_done=self.documents_done,
            chunks_done=self.chunks_done,
            chunks_total=self.chunks_total,
        )


def _index_plans(
    context: IngestContext,
    target: IndexTarget,
    plans: Sequence[DocumentPlan],
    progress: _JobProgress,
    *,
    should_stop: Callable[[], bool],
    should_yield: Callable[[], bool] = never_stop,
) -> list[str]:
    """Index the planned documents in batches; the failures, one line per failed document.

    Unavailable propagates. A batch that fails otherwise is run again document by document,
    so that only the culprit fails. JobInterrupted between batches when `should_stop`, or
    after the first batch when `should_yield`: what is indexed stays, a resume skips it.
    """
    failures: list[str] = []
    for written, group in enumerate(_batches(plans, UPSERT_BATCH_CHUNKS)):
        if should_stop() or (written and should_yield()):
            raise JobInterrupted("interrupted: the queue is stopping or lets another job run")
        chunks_before = progress.chunks_done
        try:
            _index_documents(context, target, group, progress)
        except (Unavailable, TargetRetired):
            raise
        except Exception as exc:
            if len(group) == 1:
                failures.append(_fail_document(context, target, group[0], exc, progress))
                continue
            progress.chunks_done = chunks_before
            for plan in group:
                try:
                    _index_documents(context, target, [plan], progress)
                except (Unavailable, TargetRetired):
                    raise
                except Exception as document_exc:
                    failures.append(_fail_document(context, target, plan, document_exc, progress))
    return failures


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
    target: IndexTarget,
    plan: DocumentPlan,
    exc: Exception,
    progress: _JobProgress,
) -> str:
    logger.error("document %s failed", plan.document.id, exc_info=exc)
    error = f"{type(exc).__name__}: {exc}"
    if target.reindex_job is None:
        context.catalog.mark_document_failed(target.collection.name, plan.document.id, error=error)
    progress.add(documents=1)
    return f"{plan.document.id}: {error}"


def _documents_to_index(
    catalog: Catalog, collection: str, document_ids: Sequence[str]
) -> list[DocumentRecord]:
    """The job's documents that still exist and whose current text is not what is indexed."""
    return [
        document
        for document in catalog.get_documents(collection, document_ids)
        if document.indexed_hash != document.content_hash
    ]


def _index_documents(
    context: IngestContext,
    target: IndexTarget,
    plans: Sequence[DocumentPlan],
    progress: _JobProgress,
) -> None:
    """Embed and write the documents' chunks in batches, then drop their stale points.

    CollectionRebuilt when the target's store collection is gone because a re-index
    replaced it, ReindexGivenUp when the re-index it was filling was given up (any other
    missing collection is NotFound).
    """
    try:
        _write_documents(context, target, plans, progress)
    except NotFound:
        if target.reindex_job is not None:
            _check_reindex_pending(context.catalog, target)
        elif context.catalog.get_collection(target.collection.name).store_name != (
            target.store_name
        ):
            raise CollectionRebuilt(target.store_name) from None
        raise


def _check_reindex_pending(catalog: Catalog, target: IndexTarget) -> None:
    """Raise unless the re-index that `target` fills is still the collection's pending one:
    ReindexSwappedIn when it was completed meanwhile, ReindexGivenUp when it was given up.

    Asked before each write of a re-index, so that a run delivered again while another run
    of it swaps it in stops writing what it planned into a store collection that ingests now
    write to (a document changed since would get its old chunks back)."""
    current = catalog.get_collection(target.collection.name)
    if current.reindex is not None and current.reindex.job_id == target.reindex_job:
        return
    if current.store_name == target.store_name:
        raise ReindexSwappedIn(target.store_name)
    raise ReindexGivenUp(target.reindex_job)


def _write_documents(
    context: IngestContext,
    target: IndexTarget,
    plans: Sequence[DocumentPlan],
    progress: _JobProgress,
) -> None:
    collection = target.collection.name
    chunks = [(plan, index, chunk) for plan in plans for index, chunk in enumerate(plan.chunks)]
    means = _DocumentMeans()
    for batch_start in range(0, len(chunks), UPSERT_BATCH_CHUNKS):
        batch = chunks[batch_start : batch_start + UPSERT_BATCH_CHUNKS]
        texts = [plan.indexed_text(chunk, target.term_map) for plan, _, chunk in batch]
        vectors = target.model.encode_passages(texts)
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
        if target.document_vectors:
            points = means.points_to_write(batch, vectors, points)
        if target.reindex_job is not None:
            _check_reindex_pending(context.catalog, target)
        context.store.upsert(target.store_name, points)
        progress.add(chunks=len(batch))
    if target.reindex_job is not None:
        _check_reindex_pending(context.catalog, target)
    for plan in plans:
        context.store.delete_document(
            target.store_name, plan.document.id, from_chunk=len(plan.chunks)
        )
    written = {plan.document.id: plan.indexed for plan in plans}  # one transaction for all
    if target.reindex_job is not None:
        context.catalog.record_reindexed(target.reindex_job, written)
        progress.add(documents=len(plans))
        return
    deleted = context.catalog.mark_documents_indexed(
        collection, written, store_name=target.store_name
    )
    for document_id in deleted:  # deleted while its chunks were written: leave no ghosts
        context.store.delete_document(target.store_name, document_id)
    progress.add(documents=len(plans) - len(deleted))


class _DocumentMeans:
    """Each document's vector, the mean of its chunks' vectors ("split, encode, average"),
    carried by its first chunk's point.

    A document's chunks may span several embedding batches: its first chunk is held back
    until its last one is embedded, then written with the mean. A job interrupted meanwhile
    has not marked the document indexed, so its resume writes the document again whole.
    """

    def __init__(self) -> None:
        self._sums: dict[str, numpy.ndarray] = {}
        self._first_chunks: dict[str, ChunkPoint] = {}

    def points_to_write(
        self,
        batch: Sequence[tuple[DocumentPlan, int, ChunkSpan]],
        vectors: numpy.ndarray,
        points: Sequence[ChunkPoint],
    ) -> list[ChunkPoint]:
        """The batch's points to write now: first chunks wait for their document's end."""
        ready: list[ChunkPoint] = []
        for (plan, index, _), vector, point in zip(batch, vectors, points, strict=True):
            document_id = plan.document.id
            previous = self._sums.get(document_id)
            self._sums[document_id] = vector if previous is None else previous + vector
            if index == 0:
                self._first_chunks[document_id] = point
            else:
                ready.append(point)
            if index == len(plan.chunks) - 1:
                mean = self._sums.pop(document_id) / len(plan.chunks)
                first = self._first_chunks.pop(document_id)
                ready.append(dataclasses.replace(first, document_vector=mean.tolist()))
        return ready
