"""Reconciling a collection's vectors with its catalog, which is the source of truth.

What the catalog says of each document (retrieval/catalog.py, IndexState) against what the
serving store collection holds (VectorStore.chunk_indexes):

    catalog says            store holds                          repair
    indexed, n chunks       not every chunk index 0..n-1         re-queue: one ingest job
                                                                 embeds the document again
    indexed, n chunks       chunk indexes >= n (the tail of an   delete those points
                            older, longer version)
    no such document        any points (orphans)                 delete them
    pending or failed       anything                             none: their job's work

A reconcile runs within the caller's request: reading what a collection holds scrolls
payloads without vectors, about 0.5 s per 10^5 points on an Edge shard (2 busy cores), and
keeps one set of chunk indexes per document in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ingest.queue import JobQueue
from retrieval.catalog import Catalog, DocumentStatus, IndexState
from retrieval.collections import create_vectors
from retrieval.errors import Conflict, Unavailable
from retrieval.store.base import VectorStore

logger = logging.getLogger(__name__)

REPORTED_IDS = 20
"""A report names at most this many documents of each kind (sorted); the counts are exact."""
REPAIR_BATCH_DOCUMENTS = 200
"""Documents repaired per catalog transaction (their rows stay locked while their points are
deleted: a bounded batch keeps that short)."""


@dataclass(frozen=True, slots=True)
class Discrepancies:
    """Where the store disagrees with the catalog; every mapping is keyed by document id."""

    incomplete: dict[str, int] = field(default_factory=dict)
    """Indexed documents with missing points: how many of their chunks are missing."""
    stale: dict[str, int] = field(default_factory=dict)
    """Indexed documents with points at chunk_index >= chunk_count: how many."""
    orphans: dict[str, int] = field(default_factory=dict)
    """Documents the catalog does not know: how many points they have."""


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What a reconcile found and, unless `dry_run`, repaired."""

    collection: str
    dry_run: bool
    documents_checked: int
    """Documents the catalog says are indexed, compared with the store's points."""
    documents_skipped: int
    """Pending or failed documents: left to their jobs."""
    points_checked: int
    vectors_recreated: bool
    """The store collection was missing altogether (and was created again unless dry_run)."""
    documents_requeued: int
    """Indexed documents with missing points, re-queued for indexing (or to be)."""
    requeued_ids: list[str]
    missing_points: int
    orphan_documents: int
    """Documents unknown to the catalog whose points were (or would be) deleted."""
    orphan_ids: list[str]
    orphan_points: int
    stale_chunks: int
    """Points of chunks beyond their document's chunk count, deleted (or to be)."""
    job_id: str | None
    """The ingest job re-indexing the re-queued documents."""


def find_discrepancies(
    held: Mapping[str, set[int]], states: Mapping[str, IndexState]
) -> Discrepancies:
    """Compare what the store holds with what the catalog says (pure: nothing is read)."""
    found = Discrepancies()
    for document_id, chunk_indexes in held.items():
        if document_id not in states:
            found.orphans[document_id] = len(chunk_indexes)
    for document_id, state in states.items():
        if state.status is not DocumentStatus.INDEXED:
            continue
        chunk_indexes = held.get(document_id, set())
        missing = state.chunk_count - sum(
            1 for index in chunk_indexes if 0 <= index < state.chunk_count
        )
        stale = sum(1 for index in chunk_indexes if index >= state.chunk_count)
        if missing:
            found.incomplete[document_id] = missing
        if stale:
            found.stale[document_id] = stale
    return found


def reconcile_collection(
    name: str,
    *,
    catalog: Catalog,
    store: VectorStore,
    job_queue: JobQueue,
    dry_run: bool = False,
) -> ReconcileReport:
    """Make the collection's serving vectors agree with its catalog.

    1. refuse while a re-index of the collection runs (Conflict): it rewrites every vector
    2. read what the store holds per document, then what the catalog says; in that order,
       because a document is staged before any point of it is written, so a point whose
       document the later catalog read lacks is an orphan, never a document being ingested
       (a missing store collection is created again, empty)
    3. compare (find_discrepancies); with `dry_run`, report and stop
    4. delete stale chunks, then orphans, each batch of documents only while they are still
       as read (their catalog rows locked meanwhile: Catalog.while_unchanged)
    5. re-queue the indexed documents with missing points in one ingest job and submit it;
       if the queue cannot take it, the documents get their indexed state back and
       Unavailable propagates (nothing else was left half-done: retry)
    """
    collection = catalog.get_collection(name)
    if collection.reindex is not None:
        raise Conflict(
            f"collection {name!r} is being re-indexed (job {collection.reindex.job_id}); "
            "reconcile it once that job has finished"
        )
    store_name = collection.store_name
    vectors_missing = not store.collection_exists(store_name)
    if vectors_missing and not dry_run:
        logger.warning("collection %r: its vectors %r are missing; creating them", name, store_name)
        create_vectors(store, store_name, collection.dimension, collection.filterable)
    held = {} if vectors_missing else store.chunk_indexes(store_name)
    states = catalog.index_states(name)
    found = find_discrepancies(held, states)
    indexed = {
        document_id: state
        for document_id, state in states.items()
        if state.status is DocumentStatus.INDEXED
    }

    requeued = sorted(found.incomplete)
    orphans = sorted(found.orphans)
    stale = sorted(found.stale)
    job_id = None
    if not dry_run:
        repairs = _Repairs(catalog, store, name, store_name, indexed)
        stale = repairs.delete_stale_chunks(stale)
        orphans = repairs.delete_orphans(orphans)
        requeued, job_id = repairs.requeue(job_queue, requeued)
    report = ReconcileReport(
        collection=name,
        dry_run=dry_run,
        documents_checked=len(indexed),
        documents_skipped=len(states) - len(indexed),
        points_checked=sum(len(chunk_indexes) for chunk_indexes in held.values()),
        vectors_recreated=vectors_missing,
        documents_requeued=len(requeued),
        requeued_ids=requeued[:REPORTED_IDS],
        missing_points=sum(found.incomplete[document_id] for document_id in requeued),
        orphan_documents=len(orphans),
        orphan_ids=orphans[:REPORTED_IDS],
        orphan_points=sum(found.orphans[document_id] for document_id in orphans),
        stale_chunks=sum(found.stale[document_id] for document_id in stale),
        job_id=job_id,
    )
    if not dry_run and (requeued or orphans or stale or vectors_missing):
        logger.warning(
            "collection %r reconciled: %d documents re-queued (job %s), %d orphan documents "
            "and %d stale chunks deleted",
            name,
            report.documents_requeued,
            job_id,
            report.orphan_documents,
            report.stale_chunks,
        )
    return report


@dataclass(frozen=True, slots=True)
class _Repairs:
    """The repairs of one reconcile, on the collection `name` served by `store_name`."""

    catalog: Catalog
    store: VectorStore
    name: str
    store_name: str
    indexed: Mapping[str, IndexState]
    """The indexed documents as read: a repair touches only those still in that state."""

    def delete_stale_chunks(self, document_ids: Sequence[str]) -> list[str]:
        def delete_stale(unchanged: list[str]) -> None:
            for document_id in unchanged:
                from_chunk = self.indexed[document_id].chunk_count
                self.store.delete_document(self.store_name, document_id, from_chunk=from_chunk)

        done: list[str] = []
        for batch in _batches(document_ids):
            expected = {document_id: self.indexed[document_id] for document_id in batch}
            done += self.catalog.while_unchanged(self.name, expected, delete_stale)
        return done

    def delete_orphans(self, document_ids: Sequence[str]) -> list[str]:
        def delete_orphans(still_absent: list[str]) -> None:
            self.store.delete_documents(self.store_name, still_absent)

        done: list[str] = []
        for batch in _batches(document_ids):
            absent: dict[str, IndexState | None] = dict.fromkeys(batch)
            done += self.catalog.while_unchanged(self.name, absent, delete_orphans)
        return done

    def requeue(
        self, job_queue: JobQueue, document_ids: Sequence[str]
    ) -> tuple[list[str], str | None]:
        """Re-queue the documents still as read in one job: (their ids, the job's id)."""
        if not document_ids:
            return [], None
        expected = {document_id: self.indexed[document_id] for document_id in document_ids}
        job = self.catalog.requeue_documents(self.name, expected)
        if job is None:
            return [], None
        try:
            job_queue.submit(job.id)
        except Unavailable as exc:
            self.catalog.fail_job(job.id, error=str(exc))
            self.catalog.undo_requeue(self.name, expected)
            raise
        return sorted(self.catalog.job_document_ids(job.id)), job.id


def _batches(document_ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(document_ids), REPAIR_BATCH_DOCUMENTS):
        yield list(document_ids[start : start + REPAIR_BATCH_DOCUMENTS])
