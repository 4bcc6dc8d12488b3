"""The embedded engine: Qdrant Edge shards in-process, one folder per collection.

Layout under `root`: ``<name>/`` is the shard of collection `name`; ``.optimizing/`` holds
the working copies of shards being optimised (a leading dot is therefore refused in names).

Findings about qdrant-edge-py 0.9.0, measured on this machine (2 cores, 384-dim vectors),
that shape this module:

- Every EdgeShard method holds the GIL for its whole duration (no ``allow_threads``): while
  one runs, no other Python thread of the process makes progress. `optimize()` on 20,000
  points took about 10 s with a Python ticker thread getting 1 tick instead of ~1,000, so
  calling it from a background *thread* would freeze the whole process (the API included).
  Calls from several threads are therefore serialised by the GIL and never overlap inside
  the engine; a per-collection lock costs nothing and is used around every engine call,
  because the collection's shard is closed and swapped (below) and dropped.
- A shard folder can be opened once: a second `EdgeShard.load` of an open folder fails
  ("failed to open WAL ... WouldBlock"), from this process or another. A *copy* of a
  flushed, open shard loads fine in another process.
- So optimisation runs in a child process on a copy: under the collection's lock the shard
  is flushed and copied to ``.optimizing/<name>``; the child loads the copy, runs
  `optimize()` (builds HNSW and payload index segments) and closes it at a lower priority
  (`optimize_niceness`: the build takes the cores searches leave idle), while this process
  keeps serving searches and writes from the live shard. Writes made since the copy are
  journalled and replayed onto the optimised copy, which then replaces the live folder
  (close, rename, load: a short pause of that collection only). Replaying a write that the
  copy already holds is harmless: upserts by id and deletes by filter give the
  same final state when repeated in order. One optimisation at a time in the process (each
  child holds a copy of its shard; others wait their turn). Closing the store stops one in
  progress (its copy is discarded); the counter of points written since the last one is
  seeded at open with the shard's unindexed points, and an open that finds enough of them
  starts one, so restarts do not forget pending work.
- `EdgeShard.load(path, config)` checks the config against the shard and writes it over the
  stored one; the next `optimize()` rebuilds every segment indexed under another HNSW
  configuration (12,000 384-dim points: 9 s at m 16, 19 s rebuilt at m 32). A shard opened
  under a plan other than its own is loaded so, and optimised at once if it has a graph.
- `update()` is searchable as soon as it returns (no flush needed for visibility). With the
  write-ahead log (the default) an update survives the process dying right after `update()`
  returns (`os._exit` without flush or close: replayed at load; power loss not tested), so
  upserts do not flush; `flush()` persists segments and shortens replay, `close()` flushes.
- Scores are computed in float32: an identical unit vector may score 0.9999999 rather than
  1.0 (qdrant-client's local mode computes in float64: 1.00000006). The threshold rule
  ``score >= threshold`` is applied here on the returned score, so equality is kept.
- `MatchValue(True/False)` is converted to the integer 1/0 and matches no boolean payload
  value; a `numpy.bool_` is converted to a boolean, so the filter passes one.
- Sparse IDF statistics (the ``lexical`` vector's IDF modifier) are read from the sparse
  index, which goes on counting deleted points (and the old vectors of replaced ones) until
  an optimisation rewrites their segment; qdrant-client's local mode counts live points
  only. Searches therefore ask for the IDF corpus "every live point" (`IdfParams` with an
  empty filter): the statistics are exact after deletes and agree with local mode, for
  about 1 ms per lexical search on 10^5 points.
- There is no group query: grouping by document over-fetches (store/base.py). A fused query
  returns the dense vectors of its hits, so the dense score of every hybrid hit is computed
  here from them; the lexical leg runs again beside it in the same `query_batch` for the
  lexical scores. Measured on 5x10^4 384-dim points (2 busy cores, exact search): the fused
  query alone 7.0 ms; fused query and lexical leg in one batch 6.3 ms; fused query, dense
  and lexical legs in one batch 11.2 ms (the batch does not share the fused query's legs).
- A sparse vector whose index and value lists differ in length makes the engine panic
  (``pyo3_runtime.PanicException``, not an Exception); duplicate indices are summed.
  store/base.py's `sparse_lists` refuses both before any call.
- The engine raises bare `Exception` with a message. Missing collections are detected here
  before calling it (NotFound); a vector of the wrong dimension ("Vector dimension error")
  becomes InvalidInput; any other engine error is a bug or a damaged shard and propagates
  unchanged, so it surfaces instead of being reported as a retryable outage.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy
import qdrant_edge as qe

from retrieval.errors import Conflict, InvalidInput, NotFound
from retrieval.filters import And, DateRange, Filter, Match, MatchAny, Not, Or, Range
from retrieval.hnsw import FULL_SCAN_KB, HnswPlan
from retrieval.store import base
from retrieval.store.base import (
    DENSE_VECTOR,
    DOCUMENT_VECTOR,
    LEXICAL_VECTOR,
    RRF_K,
    ChunkPoint,
    PayloadIndexKind,
    SparseVector,
    StoredHit,
)

logger = logging.getLogger(__name__)

WORK_DIR_NAME = ".optimizing"
CONFIG_FILE = "edge_config.json"

ENGINE_GRAPH = (16, 100)
"""Qdrant's m and ef_construct, which a shard made without a plan builds its graph with."""

_UNSAFE_NAME = re.compile(r"^\.|[/\\\x00]")

_OPTIMIZE_CHILD = (
    "import os, sys, qdrant_edge\n"
    "os.nice(int(sys.argv[2]))\n"
    "shard = qdrant_edge.EdgeShard.load(sys.argv[1])\n"
    "shard.optimize()\n"
    "shard.close()\n"
)


@dataclass(eq=False)
class _Collection:
    """One open shard and its bookkeeping; every field is guarded by `lock`."""

    shard: qe.EdgeShard | None
    document_vectors: bool
    """Whether the shard was made with DOCUMENT_VECTOR (shards made before it lack it)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    points_since_optimize: int = 0
    journal: list[qe.UpdateOperation] | None = None
    """Writes made since the running optimisation copied the shard; None when none runs."""
    search_params: qe.SearchParams | None = None
    """The beam of dense searches, chosen for the shard's size when it was opened or
    optimised (only optimised segments have a graph; the rest are scanned exactly)."""
    optimizer: threading.Thread | None = None
    child: subprocess.Popen[bytes] | None = None
    cancelled: bool = False


class EdgeVectorStore:
    """VectorStore on Qdrant Edge shards under `root`, optimised in a child process."""

    def __init__(
        self,
        *,
        root: Path,
        optimize_after_points: int,
        hnsw: HnswPlan | None = None,
        optimize_niceness: int = 0,
    ) -> None:
        """`hnsw`: the graph of new collections and the beam of dense searches in indexed
        segments (None: the engine's defaults); segments not indexed yet are scanned exactly
        either way. `optimize_niceness`: how much lower the optimising child's priority is."""
        if optimize_after_points < 1:
            raise ValueError("optimize_after_points must be at least 1")
        if not 0 <= optimize_niceness <= 19:
            raise ValueError("optimize_niceness must be between 0 and 19")
        self._optimize_niceness = optimize_niceness
        self._root = root
        self._hnsw = hnsw
        self._work_dir = root / WORK_DIR_NAME
        self._optimize_after_points = optimize_after_points
        self._lock = threading.Lock()
        self._collections: dict[str, _Collection] = {}
        self._closing = False
        self._optimizations_completed = 0
        self._build_turn = threading.Semaphore(1)
        """One index build at a time in this process: each holds a copy of its shard in a child
        process, and a restart may find many collections to rebuild."""

    @property
    def optimizations_completed(self) -> int:
        """How many background optimisations replaced a live shard since this store opened."""
        return self._optimizations_completed

    def create_collection(self, name: str, *, dimension: int) -> None:
        path = self._shard_path(name)
        with self._lock:
            if name in self._collections or self._recover(name):
                existing = self._stored_dimension(path)
                if existing != dimension:
                    raise Conflict(
                        f"Collection {name!r} exists with dimension {existing}, not {dimension}; "
                        "drop it or use the model it was built with."
                    )
                return
            config = _new_collection_config(dimension, self._hnsw)
            shard = qe.EdgeShard.create(str(path), config)
            shard.update(
                qe.UpdateOperation.create_field_index("document_id", qe.PayloadSchemaType.Keyword)
            )
            shard.update(
                qe.UpdateOperation.create_field_index("chunk_index", qe.PayloadSchemaType.Integer)
            )
            shard.flush()
            self._collections[name] = _Collection(
                shard=shard, document_vectors=True, search_params=self._search_params(shard)
            )

    def drop_collection(self, name: str) -> None:
        path = self._shard_path(name)
        with self._lock:
            collection = self._collections.pop(name, None)
        if collection is not None:
            self._cancel_optimization(collection)
            with collection.lock:
                if collection.shard is not None:
                    collection.shard.close()
                    collection.shard = None
        with self._lock:
            shutil.rmtree(path, ignore_errors=True)
            shutil.rmtree(self._work_path(name), ignore_errors=True)
            shutil.rmtree(self._old_path(name), ignore_errors=True)

    def collection_exists(self, name: str) -> bool:
        self._shard_path(name)
        with self._lock:
            return name in self._collections or self._recover(name)

    def has_document_vectors(self, name: str) -> bool:
        return self._open(name).document_vectors

    def upsert(self, name: str, points: Sequence[ChunkPoint]) -> None:
        if not points:
            self._open(name)
            return
        operation = qe.UpdateOperation.upsert_points(
            [qe.Point(point.id, _vectors(point), point.payload.to_dict()) for point in points]
        )
        with self._shard(name) as (collection, shard):
            _update(shard, operation)
            if collection.journal is not None:
                collection.journal.append(operation)
            collection.points_since_optimize += len(points)
            self._maybe_schedule_optimization(name, collection)

    def delete_document(self, name: str, document_id: str, *, from_chunk: int = 0) -> None:
        operation = qe.UpdateOperation.delete_points_by_filter(
            qe.Filter(
                must=[
                    qe.FieldCondition("document_id", match=qe.MatchValue(document_id)),
                    qe.FieldCondition("chunk_index", range=qe.RangeFloat(gte=from_chunk)),
                ]
            )
        )
        with self._shard(name) as (collection, shard):
            shard.update(operation)
            if collection.journal is not None:
                collection.journal.append(operation)

    def delete_documents(self, name: str, document_ids: Sequence[str]) -> None:
        self._open(name)
        for batch in base.id_batches(document_ids):
            operation = qe.UpdateOperation.delete_points_by_filter(
                qe.Filter(must=[qe.FieldCondition("document_id", match=qe.MatchAny(batch))])
            )
            with self._shard(name) as (collection, shard):
                shard.update(operation)
                if collection.journal is not None:
                    collection.journal.append(operation)

    def chunk_indexes(self, name: str) -> dict[str, set[int]]:
        held: dict[str, set[int]] = {}
        offset: qe.PointId | None = None
        while True:
            request = qe.ScrollRequest(
                offset=offset,
                limit=base.SCROLL_PAGE_POINTS,
                with_payload=["document_id", "chunk_index"],
                with_vector=False,
            )
            # One page per hold of the lock: searches and writes go on between pages, and a
            # shard swapped in by an optimisation meanwhile holds the same point ids.
            with self._shard(name) as (_, shard):
                records, offset = shard.scroll(request)
            base.add_chunk_indexes(held, (record.payload for record in records))
            if offset is None:
                return held

    def create_payload_index(self, name: str, field: str, kind: PayloadIndexKind) -> None:
        operation = qe.UpdateOperation.create_field_index(
            base.metadata_key(field), base.payload_schema(_PAYLOAD_SCHEMA, kind)
        )
        with self._shard(name) as (collection, shard):
            shard.update(operation)
            if collection.journal is not None:
                collection.journal.append(operation)

    def search(
        self,
        name: str,
        vector: Sequence[float],
        *,
        sparse: SparseVector | None = None,
        top_k: int,
        threshold: float | None = None,
        query_filter: Filter | None = None,
        group_by_document: bool = False,
        candidates: int | None = None,
        dense_weight: float = 1.0,
        document_level: bool = False,
    ) -> list[StoredHit]:
        base.check_search_arguments(
            sparse=sparse, threshold=threshold, candidates=candidates, document_level=document_level
        )
        weights = base.rrf_weights(dense_weight)
        if top_k < 1:
            self._open(name)
            return []
        dense = base.as_floats(vector)
        condition = _filter(query_filter)
        using = DOCUMENT_VECTOR if document_level else DENSE_VECTOR
        with self._shard(name) as (collection, shard):
            if document_level and not collection.document_vectors:
                raise NotFound(f"Collection {name!r} has no {DOCUMENT_VECTOR!r} vectors.")
            params = collection.search_params
            try:
                if sparse is None:
                    fetch = _dense_fetch(
                        shard, dense, condition, threshold, using=using, params=params
                    )
                else:
                    legs = base.hybrid_candidates(top_k, candidates)
                    fetch = _hybrid_fetch(
                        shard,
                        dense,
                        sparse,
                        condition,
                        legs,
                        grouping=group_by_document,
                        weights=weights,
                        dense_params=params,
                    )
                return base.collect_hits(
                    fetch,
                    top_k=top_k,
                    group_by_document=group_by_document,
                    document_of=base.document_of,
                )
            except Exception as exc:
                _raise_invalid_input(exc)
                raise

    def search_ef(self, name: str) -> int | None:
        """The beam dense searches in `name` use now (None: the engine's default)."""
        with self._shard(name) as (collection, _):
            params = collection.search_params
        return None if params is None else params.hnsw_ef

    def count(self, name: str, *, document_id: str | None = None) -> int:
        condition = (
            None
            if document_id is None
            else qe.Filter(
                must=[qe.FieldCondition("document_id", match=qe.MatchValue(document_id))]
            )
        )
        with self._shard(name) as (_, shard):
            return shard.count(qe.CountRequest(exact=True, filter=condition))

    def wait_for_optimizations(self) -> None:
        """Block until every running background optimisation has finished."""
        with self._lock:
            collections = list(self._collections.values())
        for collection in collections:
            with collection.lock:
                thread = collection.optimizer
            if thread is not None:
                thread.join()

    def close(self) -> None:
        """Stop running optimisations, then flush and close every shard.

        An optimisation is cut short rather than waited for (a graph of 10^6 points takes
        many minutes): its work is discarded, and the next open starts it again."""
        with self._lock:
            self._closing = True
        try:
            with self._lock:
                collections = list(self._collections.values())
                self._collections.clear()
            for collection in collections:  # none starts a copy while others are stopped
                with collection.lock:
                    collection.cancelled = True
            for collection in collections:
                self._cancel_optimization(collection)
            for collection in collections:
                with collection.lock:
                    if collection.shard is not None:
                        collection.shard.flush()
                        collection.shard.close()
                        collection.shard = None
        finally:
            with self._lock:
                self._closing = False

    # -- opening -----------------------------------------------------------------------

    def _shard_path(self, name: str) -> Path:
        if not name or name in {".", ".."} or _UNSAFE_NAME.search(name):
            raise InvalidInput(
                f"Collection name {name!r} cannot be a folder name: it must be non-empty, "
                "must not start with '.', and must not contain '/', '\\' or NUL."
            )
        return self._root / name

    def _work_path(self, name: str) -> Path:
        return self._work_dir / name

    def _old_path(self, name: str) -> Path:
        return self._work_dir / f"{name}.old"

    def _recover(self, name: str) -> bool:
        """Whether the closed collection `name` is on disk, finishing an interrupted swap.

        Called with the store lock held, for collections not open in this process only.
        """
        path = self._shard_path(name)
        old = self._old_path(name)
        if not (path / CONFIG_FILE).is_file() and (old / CONFIG_FILE).is_file():
            # A crash between the two renames of a swap: the old shard is complete.
            logger.warning(
                "Restoring shard %s from %s after an interrupted optimisation", path, old
            )
            shutil.rmtree(path, ignore_errors=True)
            old.rename(path)
        return (path / CONFIG_FILE).is_file()

    def _open(self, name: str) -> _Collection:
        path = self._shard_path(name)
        with self._lock:
            collection = self._collections.get(name)
            if collection is not None:
                return collection
            if not self._recover(name):
                raise NotFound(f"Collection {name!r} does not exist; create it first.")
            shutil.rmtree(self._work_path(name), ignore_errors=True)
            shard = self._load_with_plan(name, path)
            info = shard.info()
            collection = _Collection(
                shard=shard,
                document_vectors=DOCUMENT_VECTOR in _stored_vectors(path),
                points_since_optimize=max(0, info.points_count - info.indexed_vectors_count),
                search_params=self._search_params(shard),
            )
            self._collections[name] = collection
        with collection.lock:  # resume what a restart cut short
            if self._stale_graphs(name, path):
                collection.points_since_optimize = self._optimize_after_points
            self._maybe_schedule_optimization(name, collection)
        return collection

    def _load_with_plan(self, name: str, path: Path) -> qe.EdgeShard:
        """Load the shard, writing the planned graph into its configuration where it names
        another (a collection made before the plan, or under other settings); the next
        optimisation builds with it. A configuration the engine refuses (one this store did
        not write) leaves the shard as it was."""
        stored = _stored_config(path)
        graph = _configured_graph(stored)
        if self._hnsw is None or graph == self._hnsw.graph:
            return qe.EdgeShard.load(str(path))
        try:
            shard = qe.EdgeShard.load(str(path), _config_with_graph(stored, self._hnsw))
        except Exception as exc:
            logger.warning("Collection %r keeps its graph configuration: %s", name, exc)
            return qe.EdgeShard.load(str(path))
        logger.info(
            "Collection %r: new graphs get m %d / ef_construct %d (it named m %d / "
            "ef_construct %d)",
            name,
            *self._hnsw.graph,
            *graph,
        )
        return shard

    def _stale_graphs(self, name: str, path: Path) -> bool:
        """Whether segments of the shard hold graphs built other than as planned: then they
        are rebuilt in the background, searches going on over the old ones meanwhile. Read
        from the segments, not the configuration, so that a rebuild cut short by a restart
        is started again."""
        if self._hnsw is None:
            return False
        stale = sorted(graph for graph in built_graphs(path) if graph != self._hnsw.graph)
        if stale:
            logger.info(
                "Collection %r: rebuilding its graph (m / ef_construct %s) with m %d / "
                "ef_construct %d in the background",
                name,
                ", ".join(f"{m} / {ef}" for m, ef in stale),
                *self._hnsw.graph,
            )
        return bool(stale)

    @contextmanager
    def _shard(self, name: str) -> Iterator[tuple[_Collection, qe.EdgeShard]]:
        """The collection's open shard, its lock held for the duration."""
        collection = self._open(name)
        with collection.lock:
            if collection.shard is None:
                raise NotFound(f"Collection {name!r} does not exist (it was dropped).")
            yield collection, collection.shard

    def _search_params(self, shard: qe.EdgeShard) -> qe.SearchParams | None:
        if self._hnsw is None:
            return None
        return qe.SearchParams(hnsw_ef=self._hnsw.search_ef(shard.info().points_count))

    def _stored_dimension(self, path: Path) -> int:
        vectors = _stored_vectors(path)
        if DENSE_VECTOR not in vectors:
            raise Conflict(
                f"The shard at {path} predates named dense and lexical vectors; drop the "
                "collection and ingest its documents again."
            )
        return int(vectors[DENSE_VECTOR]["size"])

    # -- background optimisation -------------------------------------------------------

    def _maybe_schedule_optimization(self, name: str, collection: _Collection) -> None:
        """Start an optimisation if enough points were written; `collection.lock` is held."""
        if (
            collection.points_since_optimize < self._optimize_after_points
            or collection.optimizer is not None
            or collection.cancelled  # dropped or closed: a collection is never reused
            or self._closing
        ):
            return
        collection.points_since_optimize = 0
        collection.optimizer = threading.Thread(
            target=self._optimize,
            args=(name, collection),
            name=f"edge-optimize-{name}",
            daemon=True,
        )
        collection.optimizer.start()

    def _cancel_optimization(self, collection: _Collection) -> None:
        with collection.lock:
            collection.cancelled = True
            thread = collection.optimizer
            child = collection.child
        if child is not None:
            child.terminate()
        if thread is not None:
            thread.join()

    def _start_optimizer(self, work: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", _OPTIMIZE_CHILD, str(work), str(self._optimize_niceness)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _optimize(self, name: str, collection: _Collection) -> None:
        """Optimise the collection when no other is being optimised (the thread's body)."""
        try:
            if self._wait_for_build_turn(collection):
                try:
                    self._build_and_swap(name, collection)
                finally:
                    self._build_turn.release()
        finally:
            with collection.lock:
                collection.journal = None
                collection.optimizer = None

    def _build_and_swap(self, name: str, collection: _Collection) -> None:
        """Optimise a copy of the shard in a child process, then swap it in."""
        live = self._shard_path(name)
        work = self._work_path(name)
        old = self._old_path(name)
        try:
            with collection.lock:
                if collection.shard is None or collection.cancelled or self._closing:
                    return
                collection.journal = []  # the writes the copy will miss, from now on
                collection.shard.flush()
                shutil.rmtree(work, ignore_errors=True)
                shutil.copytree(live, work)
                child = self._start_optimizer(work)
                collection.child = child
            _, stderr = child.communicate()
            with collection.lock:
                collection.child = None
                if collection.shard is None or collection.cancelled:
                    return
                if child.returncode != 0:
                    logger.error(
                        "Optimising collection %r failed (exit %s); it stays searchable "
                        "without the new index: %s",
                        name,
                        child.returncode,
                        stderr.decode(errors="replace").strip()[-2000:],
                    )
                    return
                _replay(work, collection.journal or [])
                collection.shard.close()
                collection.shard = None
                shutil.rmtree(old, ignore_errors=True)
                live.rename(old)
                work.rename(live)
                collection.shard = qe.EdgeShard.load(str(live))
                collection.search_params = self._search_params(collection.shard)
                shutil.rmtree(old, ignore_errors=True)
                self._optimizations_completed += 1
                logger.info("Collection %r optimised", name)
        except Exception:
            logger.exception("Optimising collection %r failed", name)
            with collection.lock:
                if collection.shard is None and not collection.cancelled:
                    self._reopen_after_failed_swap(name, collection)
                if collection.shard is not None:
                    # The live folder may hold the optimised shard by now: its size sets the beam.
                    collection.search_params = self._search_params(collection.shard)
        finally:
            with collection.lock:
                collection.child = None
            shutil.rmtree(work, ignore_errors=True)

    def _reopen_after_failed_swap(self, name: str, collection: _Collection) -> None:
        """Open the shard again after a swap failed half-way; `collection.lock` is held.

        The shard set aside (``.optimizing/<name>.old``) holds every write, so where it is
        there it replaces whatever the live folder holds (nothing, or an optimised copy that
        did not load). Unlike at a restart (`_recover`), where a set-aside folder may be half
        deleted, it is whole here: it is deleted only after the swapped-in shard loaded. If
        even that cannot be opened, the collection is forgotten: its next use opens it from
        disk again, and says why it cannot."""
        live = self._shard_path(name)
        old = self._old_path(name)
        if (old / CONFIG_FILE).is_file():
            shutil.rmtree(live, ignore_errors=True)
            old.rename(live)
        try:
            collection.shard = qe.EdgeShard.load(str(live))
        except Exception:
            logger.exception("Collection %r could not be opened again", name)
            collection.cancelled = True
            with self._lock:
                if self._collections.get(name) is collection:
                    del self._collections[name]

    def _wait_for_build_turn(self, collection: _Collection) -> bool:
        """Wait while another collection's index is built; False if this one was dropped or
        the store began closing meanwhile (its writes are in the live shard either way)."""
        while not self._build_turn.acquire(timeout=0.1):
            with collection.lock:
                if collection.cancelled or self._closing:
                    return False
        return True


def _replay(path: Path, journal: list[qe.UpdateOperation]) -> None:
    """Apply the writes journalled during an optimisation to its result at `path`."""
    optimized = qe.EdgeShard.load(str(path))
    try:
        for operation in journal:
            optimized.update(operation)
        optimized.flush()
    finally:
        optimized.close()


def _new_collection_config(dimension: int, hnsw: HnswPlan | None) -> qe.EdgeConfig:
    """A new collection's shard: its named vectors and, with a plan, its graph."""
    return qe.EdgeConfig(
        vectors={
            DENSE_VECTOR: qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine),
            # Read by document-unit searches only: a memory map, not RAM (its slot is as
            # large as the dense vector's for every point, first chunk or not).
            DOCUMENT_VECTOR: qe.EdgeVectorParams(
                size=dimension, distance=qe.Distance.Cosine, on_disk=True
            ),
        },
        sparse_vectors={LEXICAL_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        hnsw_config=None if hnsw is None else _graph_config(hnsw),
    )


def _graph_config(hnsw: HnswPlan) -> qe.HnswIndexConfig:
    return qe.HnswIndexConfig(
        m=hnsw.m, ef_construct=hnsw.ef_construct, full_scan_threshold=FULL_SCAN_KB
    )


def _stored_config(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    return config


def _config_with_graph(stored: dict[str, Any], hnsw: HnswPlan) -> qe.EdgeConfig:
    """A shard's configuration as it was made (`stored`: its file, from which its vectors'
    parameters are read back), with `hnsw`'s graph."""
    vectors = {
        name: qe.EdgeVectorParams(
            size=int(params["size"]),
            distance=getattr(qe.Distance, params["distance"]),
            on_disk=params.get("on_disk"),
        )
        for name, params in (stored.get("vectors") or {}).items()
    }
    sparse_vectors = {
        name: qe.EdgeSparseVectorParams(
            modifier=qe.Modifier.Idf if params.get("modifier") == "idf" else None
        )
        for name, params in (stored.get("sparse_vectors") or {}).items()
    }
    return qe.EdgeConfig(
        vectors=vectors, sparse_vectors=sparse_vectors, hnsw_config=_graph_config(hnsw)
    )


def _stored_vectors(path: Path) -> dict[str, Any]:
    """The dense vectors' configuration of the shard at `path`, by name."""
    vectors: dict[str, Any] = _stored_config(path).get("vectors") or {}
    return vectors


def _configured_graph(stored: dict[str, Any]) -> tuple[int, int]:
    """The (m, ef_construct) a shard whose configuration file is `stored` builds new graphs
    with (the engine's defaults where it names none)."""
    graph: dict[str, Any] = stored.get("hnsw_config") or {}
    return int(graph.get("m", ENGINE_GRAPH[0])), int(graph.get("ef_construct", ENGINE_GRAPH[1]))


def built_graphs(path: Path) -> set[tuple[int, int]]:
    """The (m, ef_construct) of each graph built over the dense vectors of the shard at
    `path`, read from its segments' descriptions (qdrant-edge-py 0.9.0's layout)."""
    graphs = set()
    for description in path.glob("segments/*/segment.json"):
        try:
            segment = json.loads(description.read_text(encoding="utf-8"))
            index = segment["config"]["vector_data"][DENSE_VECTOR]["index"]
            if index["type"] == "hnsw":
                graphs.add((int(index["options"]["m"]), int(index["options"]["ef_construct"])))
        except (OSError, ValueError, KeyError, TypeError):
            # Not a description this version can read: the graph stays as it is.
            logger.warning("Cannot read the segment description %s", description)
    return graphs


def _update(shard: qe.EdgeShard, operation: qe.UpdateOperation) -> None:
    try:
        shard.update(operation)
    except Exception as exc:
        _raise_invalid_input(exc)
        raise


def _raise_invalid_input(exc: Exception) -> None:
    """Re-raise the engine's complaint about the caller's vectors as InvalidInput."""
    if "Vector dimension error" in str(exc):
        raise InvalidInput(f"The vector does not fit the collection: {exc}") from exc


_PAYLOAD_SCHEMA: dict[PayloadIndexKind, qe.PayloadSchemaType] = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "integer": qe.PayloadSchemaType.Integer,
    "float": qe.PayloadSchemaType.Float,
    "bool": qe.PayloadSchemaType.Bool,
    "datetime": qe.PayloadSchemaType.Datetime,
}


def _vectors(point: ChunkPoint) -> dict[str, qe.NamedVector]:
    # Typed with the engine's vector union so the dict comes back as the engine expects it.
    to_sparse: Callable[[SparseVector], qe.NamedVector] = _sparse
    return base.named_vectors(point, to_sparse)


def _sparse(sparse: SparseVector) -> qe.SparseVector:
    return qe.SparseVector(*base.sparse_lists(sparse))


def _live_idf() -> qe.SearchParams:
    """IDF statistics over every live point: an empty filter as the corpus (see above)."""
    return qe.SearchParams(idf=qe.IdfParams(corpus=qe.Filter(must=[])))


def _dense_fetch(
    shard: qe.EdgeShard,
    dense: list[float],
    condition: qe.Filter | None,
    threshold: float | None,
    *,
    using: str,
    params: qe.SearchParams | None,
) -> Callable[[int], tuple[list[StoredHit], bool]]:
    def fetch(limit: int) -> tuple[list[StoredHit], bool]:
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(dense, using=using),
            params=params,
            with_payload=True,
            with_vector=[LEXICAL_VECTOR],
            filter=condition,
            score_threshold=base.engine_threshold(threshold),
        )
        scored = shard.query(request)
        return base.dense_hits(scored, threshold), len(scored) < limit

    return fetch


def _hybrid_fetch(
    shard: qe.EdgeShard,
    dense: list[float],
    sparse: SparseVector,
    condition: qe.Filter | None,
    legs: int,
    *,
    grouping: bool,
    weights: list[float] | None,
    dense_params: qe.SearchParams | None,
) -> Callable[[int], tuple[list[StoredHit], bool]]:
    dense_query = qe.Query.Nearest(dense, using=DENSE_VECTOR)
    lexical_query = qe.Query.Nearest(_sparse(sparse), using=LEXICAL_VECTOR)

    def fetch(limit: int) -> tuple[list[StoredHit], bool]:
        # Grouping needs legs at least as long as the fused list to tell exhaustion.
        leg_limit = max(legs, limit) if grouping else legs
        fused_request = qe.QueryRequest(
            limit=limit,
            prefetches=[
                qe.Prefetch(
                    limit=leg_limit, query=dense_query, filter=condition, params=dense_params
                ),
                qe.Prefetch(
                    limit=leg_limit, query=lexical_query, filter=condition, params=_live_idf()
                ),
            ],
            query=cast(
                qe.Fusion, qe.Fusion.Rrf(k=RRF_K, weights=weights)
            ),  # the stub's union omits Rrf
            with_payload=True,
            with_vector=[DENSE_VECTOR, LEXICAL_VECTOR],
        )
        lexical_request = qe.QueryRequest(
            limit=leg_limit,
            query=lexical_query,
            filter=condition,
            params=_live_idf(),
            with_payload=False,
        )
        fused, lexical = shard.query_batch(qe.QueryBatchRequest([fused_request, lexical_request]))
        hits = base.hybrid_hits(dense, fused, lexical, engine="Qdrant Edge")
        return hits, len(fused) < limit

    return fetch


def _filter(query_filter: Filter | None) -> qe.Filter | None:
    if query_filter is None or query_filter == And(()):
        return None
    condition = _condition(query_filter)
    return condition if isinstance(condition, qe.Filter) else qe.Filter(must=[condition])


def _condition(node: Filter) -> qe.ConditionType:
    match node:
        case Match(key=key, value=bool() as value):
            # qdrant-edge 0.9.0 reads a Python bool as an integer (MatchValue(False).value is
            # 0, which matches no `false` in a payload); numpy's bool is read as a bool.
            equal = qe.MatchValue(cast(bool, numpy.bool_(value)))
            return qe.FieldCondition(base.metadata_key(key), match=equal)
        case Match(key=key, value=float() as value):
            # MatchValue takes str, int and bool only; a closed range is float equality.
            exact = qe.RangeFloat(gte=value, lte=value)
            return qe.FieldCondition(base.metadata_key(key), range=exact)
        case Match(key=key, value=str() | int() as value):
            return qe.FieldCondition(base.metadata_key(key), match=qe.MatchValue(value))
        case MatchAny(key=key, values=values):
            one_of = qe.MatchAny(cast(list[str] | list[int], list(values)))
            return qe.FieldCondition(base.metadata_key(key), match=one_of)
        case Range(key=key, gt=gt, gte=gte, lt=lt, lte=lte):
            bounds = qe.RangeFloat(gt=gt, gte=gte, lt=lt, lte=lte)
            return qe.FieldCondition(base.metadata_key(key), range=bounds)
        case DateRange(key=key, gt=gt, gte=gte, lt=lt, lte=lte):
            dates = qe.RangeDateTime(gt=_iso(gt), gte=_iso(gte), lt=_iso(lt), lte=_iso(lte))
            return qe.FieldCondition(base.metadata_key(key), range=dates)
        case Not(filter=inner):
            return qe.Filter(must_not=[_condition(inner)])
        case And(filters=filters):
            return qe.Filter(must=[_condition(inner) for inner in filters])
        case Or(filters=filters):
            return qe.Filter(should=[_condition(inner) for inner in filters])
    raise TypeError(f"not a filter: {node!r}")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
