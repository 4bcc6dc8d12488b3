"""The vector store: both engines behave alike (congruence), Edge persists and optimises."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from retrieval.config import Settings
from retrieval.errors import Conflict, InvalidInput, NotFound, Unavailable
from retrieval.store import open_vector_store
from retrieval.store.base import ChunkPayload, ChunkPoint, MetadataFilter, VectorStore, point_id
from retrieval.store.edge import EdgeVectorStore
from retrieval.store.server import ServerVectorStore

DIM = 8
ENGINES = ["edge", "server-local"]


def open_engine(kind: str, folder: Path, *, optimize_after_points: int = 10_000) -> VectorStore:
    if kind == "edge":
        return EdgeVectorStore(root=folder / "shards", optimize_after_points=optimize_after_points)
    return ServerVectorStore(client=QdrantClient(path=str(folder / "local")))


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    opened = open_engine(request.param, tmp_path)
    yield opened
    opened.close()


def unit(*values: float, dim: int = DIM) -> list[float]:
    vector = np.zeros(dim, dtype=np.float64)
    vector[: len(values)] = values
    return [float(value) for value in vector / np.linalg.norm(vector)]


def chunk(
    collection: str,
    document_id: str,
    chunk_index: int,
    vector: list[float],
    **metadata: str | int | float | bool,
) -> ChunkPoint:
    return ChunkPoint(
        id=point_id(collection, document_id, chunk_index),
        vector=vector,
        payload=ChunkPayload(
            document_id=document_id,
            chunk_index=chunk_index,
            text=f"{document_id} #{chunk_index}",
            start=chunk_index * 10,
            end=chunk_index * 10 + 9,
            title="T",
            source="src",
            metadata=metadata,
        ),
    )


def hit_keys(store: VectorStore, vector: list[float], **kwargs: object) -> list[tuple[str, int]]:
    hits = store.search("c", vector, **kwargs)  # type: ignore[arg-type]
    return [(hit.payload.document_id, hit.payload.chunk_index) for hit in hits]


# -- behaviour of each engine ------------------------------------------------------------


def test_create_is_idempotent_and_refuses_another_dimension(store: VectorStore) -> None:
    assert not store.collection_exists("c")
    store.create_collection("c", dimension=DIM)
    store.upsert("c", [chunk("c", "d", 0, unit(1))])
    store.create_collection("c", dimension=DIM)

    assert store.collection_exists("c")
    assert store.count("c") == 1
    with pytest.raises(Conflict, match="'c' exists with dimension 8, not 4"):
        store.create_collection("c", dimension=4)


def test_upsert_replaces_a_point_with_the_same_id(store: VectorStore) -> None:
    store.create_collection("c", dimension=DIM)
    store.upsert("c", [chunk("c", "d", 0, unit(1), lang="en")])
    store.upsert("c", [chunk("c", "d", 0, unit(0, 1), lang="fr")])

    hits = store.search("c", unit(0, 1), top_k=5)
    assert store.count("c") == 1
    assert [hit.id for hit in hits] == [point_id("c", "d", 0)]
    assert hits[0].payload.metadata == {"lang": "fr"}
    assert hits[0].score == pytest.approx(1.0, abs=1e-6)


def test_payload_round_trips(store: VectorStore) -> None:
    store.create_collection("c", dimension=DIM)
    point = chunk("c", "d", 3, unit(1), lang="en", year=2024, score=0.5, public=True)
    store.upsert("c", [point])

    (hit,) = store.search("c", unit(1), top_k=1)
    assert hit.payload == point.payload


def test_delete_document_all_or_from_a_chunk(store: VectorStore) -> None:
    store.create_collection("c", dimension=DIM)
    store.upsert("c", [chunk("c", "a", i, unit(1, i)) for i in range(5)])
    store.upsert("c", [chunk("c", "b", i, unit(1, i)) for i in range(3)])

    store.delete_document("c", "a", from_chunk=2)
    assert store.count("c", document_id="a") == 2
    assert sorted(hit_keys(store, unit(1), top_k=10)) == [
        ("a", 0),
        ("a", 1),
        ("b", 0),
        ("b", 1),
        ("b", 2),
    ]

    store.delete_document("c", "a")
    assert store.count("c", document_id="a") == 0
    assert store.count("c", document_id="b") == 3
    assert store.count("c") == 3


def test_search_orders_by_score_and_honours_top_k(store: VectorStore) -> None:
    store.create_collection("c", dimension=DIM)
    store.upsert("c", [chunk("c", "d", i, unit(1, i * 0.5)) for i in range(5)])

    hits = store.search("c", unit(1), top_k=3)

    assert [hit.payload.chunk_index for hit in hits] == [0, 1, 2]
    assert hits[0].score > hits[1].score > hits[2].score
    assert store.search("c", unit(1), top_k=0) == []


def test_threshold_keeps_a_score_equal_to_it(store: VectorStore) -> None:
    store.create_collection("c", dimension=DIM)
    store.upsert("c", [chunk("c", "d", 0, unit(1)), chunk("c", "d", 1, unit(1, 1))])

    # A unit basis vector scores exactly 1.0 against itself in both engines.
    assert hit_keys(store, unit(1), top_k=5, threshold=1.0) == [("d", 0)]

    # An arbitrary score, taken as returned: the hit holding it survives its own threshold.
    returned = store.search("c", unit(1, 0.3, 0.2), top_k=5)
    second = returned[1].score
    kept = store.search("c", unit(1, 0.3, 0.2), top_k=5, threshold=second)
    assert [hit.id for hit in kept] == [hit.id for hit in returned[:2]]
    assert store.search("c", unit(1, 0.3, 0.2), top_k=5, threshold=second + 1e-4)[1:] == []


def test_metadata_filter_is_equality_on_every_field(store: VectorStore) -> None:
    store.create_collection("c", dimension=DIM)
    store.upsert(
        "c",
        [
            chunk("c", "d", 0, unit(1), lang="en", year=2024, public=True, weight=0.5),
            chunk("c", "d", 1, unit(1, 0.1), lang="fr", year=2024, public=False, weight=0.5),
            chunk("c", "d", 2, unit(1, 0.2), lang="en", year=2023, public=True, weight=1.5),
        ],
    )

    def indexes(metadata_filter: MetadataFilter) -> list[int]:
        hits = store.search("c", unit(1), top_k=10, metadata_filter=metadata_filter)
        return [hit.payload.chunk_index for hit in hits]

    assert indexes({"lang": "en"}) == [0, 2]
    assert indexes({"lang": "en", "year": 2023}) == [2]
    assert indexes({"public": False}) == [1]
    assert indexes({"weight": 0.5}) == [0, 1]
    assert indexes({"lang": "de"}) == []
    assert indexes({}) == [0, 1, 2]


def test_count_whole_collection_and_per_document(store: VectorStore) -> None:
    store.create_collection("c", dimension=DIM)
    assert store.count("c") == 0
    store.upsert("c", [chunk("c", "a", i, unit(1, i)) for i in range(4)])
    store.upsert("c", [chunk("c", "b", 0, unit(0, 1))])

    assert store.count("c") == 5
    assert store.count("c", document_id="a") == 4
    assert store.count("c", document_id="missing") == 0


def test_missing_collection_is_not_found_everywhere(store: VectorStore) -> None:
    operations: list[Callable[[], object]] = [
        lambda: store.upsert("nope", [chunk("nope", "d", 0, unit(1))]),
        lambda: store.upsert("nope", []),
        lambda: store.delete_document("nope", "d"),
        lambda: store.search("nope", unit(1), top_k=3),
        lambda: store.count("nope"),
    ]
    for operation in operations:
        with pytest.raises(NotFound, match="Collection 'nope' does not exist"):
            operation()


def test_writing_a_wrong_dimension_is_invalid_input(store: VectorStore) -> None:
    store.create_collection("c", dimension=DIM)
    with pytest.raises(InvalidInput, match="dimension"):
        store.upsert("c", [chunk("c", "d", 0, unit(1, dim=4))])


def test_edge_searching_a_wrong_dimension_is_invalid_input(tmp_path: Path) -> None:
    # Edge only: qdrant-client's local mode fails inside numpy ("shapes not aligned"), where
    # a server answers 400, which ServerVectorStore maps to InvalidInput.
    store = EdgeVectorStore(root=tmp_path, optimize_after_points=10_000)
    store.create_collection("c", dimension=DIM)
    with pytest.raises(InvalidInput, match="dimension"):
        store.search("c", unit(1, dim=4), top_k=3)
    store.close()


def test_drop_removes_the_collection_and_tolerates_a_missing_one(store: VectorStore) -> None:
    store.create_collection("c", dimension=DIM)
    store.upsert("c", [chunk("c", "d", 0, unit(1))])

    store.drop_collection("c")
    store.drop_collection("c")

    assert not store.collection_exists("c")
    with pytest.raises(NotFound):
        store.count("c")
    store.create_collection("c", dimension=DIM)
    assert store.count("c") == 0


def test_numpy_rows_are_accepted(store: VectorStore) -> None:
    store.create_collection("c", dimension=DIM)
    matrix = np.eye(DIM, dtype=np.float32)
    store.upsert(
        "c",
        [
            ChunkPoint(id=point_id("c", "d", i), vector=row, payload=chunk("c", "d", i, []).payload)  # type: ignore[arg-type]
            for i, row in enumerate(matrix)
        ],
    )

    hits = store.search("c", matrix[3], top_k=1)
    assert hits[0].payload.chunk_index == 3


# -- congruence: the same operations on both engines ------------------------------------


def test_engines_agree_on_random_embeddings(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    dim, size = 384, 200
    vectors = rng.standard_normal((size, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    points = [
        ChunkPoint(
            id=point_id("c", f"doc{i % 20}", i // 20),
            vector=vectors[i].tolist(),
            payload=ChunkPayload(
                document_id=f"doc{i % 20}",
                chunk_index=i // 20,
                text=f"chunk {i}",
                start=0,
                end=1,
                metadata={"group": f"g{i % 3}", "even": i % 2 == 0},
            ),
        )
        for i in range(size)
    ]
    queries = vectors[:3] * 0.6 + rng.standard_normal((3, dim)).astype(np.float32) * 0.05
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    answers = []
    for kind in ENGINES:
        store = open_engine(kind, tmp_path / kind)
        try:
            store.create_collection("c", dimension=dim)
            store.upsert("c", points[:120])
            store.upsert("c", points[100:])
            store.delete_document("c", "doc3", from_chunk=4)
            store.delete_document("c", "doc5")
            answer: list[object] = [store.count("c"), store.count("c", document_id="doc3")]
            for query in queries.tolist():
                for options in (
                    {},
                    {"threshold": 0.05},
                    {"metadata_filter": {"group": "g1"}},
                    {"metadata_filter": {"group": "g2", "even": True}, "threshold": 0.0},
                ):
                    hits = store.search("c", query, top_k=15, **options)
                    answer.append([(hit.id, hit.score) for hit in hits])
            answers.append(answer)
        finally:
            store.close()

    edge, server = answers
    assert edge[:2] == server[:2] == [184, 4]
    for edge_hits, server_hits in zip(edge[2:], server[2:], strict=True):
        assert isinstance(edge_hits, list)
        assert isinstance(server_hits, list)
        assert edge_hits, "every query finds something"
        assert [hit_id for hit_id, _ in edge_hits] == [hit_id for hit_id, _ in server_hits]
        for (_, edge_score), (_, server_score) in zip(edge_hits, server_hits, strict=True):
            assert edge_score == pytest.approx(server_score, abs=1e-5)


# -- Edge alone: persistence and background optimisation ---------------------------------


def test_edge_persists_across_stores(tmp_path: Path) -> None:
    first = EdgeVectorStore(root=tmp_path, optimize_after_points=10_000)
    first.create_collection("c", dimension=DIM)
    first.upsert("c", [chunk("c", "d", i, unit(1, i * 0.3), lang="en") for i in range(6)])
    first.delete_document("c", "d", from_chunk=5)
    before = first.search("c", unit(1, 0.5), top_k=3, metadata_filter={"lang": "en"})
    first.close()

    second = EdgeVectorStore(root=tmp_path, optimize_after_points=10_000)
    try:
        assert second.collection_exists("c")
        assert second.count("c") == 5
        assert second.search("c", unit(1, 0.5), top_k=3, metadata_filter={"lang": "en"}) == before
    finally:
        second.close()


def test_edge_optimizes_in_the_background_without_losing_writes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    dim = 32
    vectors = rng.standard_normal((130, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def point(i: int) -> ChunkPoint:
        return chunk("c", f"doc{i % 10}", i // 10, vectors[i].tolist())

    store = EdgeVectorStore(root=tmp_path, optimize_after_points=50)
    try:
        store.create_collection("c", dimension=dim)
        store.upsert("c", [point(i) for i in range(60)])  # crosses 50: an optimisation starts
        # Written while the child process optimises a copy: journalled, replayed at the swap.
        store.upsert("c", [point(i) for i in range(60, 100)])
        store.delete_document("c", "doc0")
        during = store.search("c", vectors[42].tolist(), top_k=3)
        assert during[0].payload.text == "doc2 #4"
        assert during[0].score == pytest.approx(1.0, abs=1e-6)

        deadline = time.monotonic() + 60
        while store.optimizations_completed < 1 and time.monotonic() < deadline:
            store.wait_for_optimizations()
            time.sleep(0.01)
        assert store.optimizations_completed == 1

        assert store.count("c") == 90
        assert store.count("c", document_id="doc0") == 0
        assert store.search("c", vectors[42].tolist(), top_k=3) == during
        assert store.search("c", vectors[77].tolist(), top_k=1)[0].payload.text == "doc7 #7"
        store.upsert("c", [point(i) for i in range(100, 130)])
        assert store.count("c") == 120
    finally:
        store.close()

    reopened = EdgeVectorStore(root=tmp_path, optimize_after_points=10_000)
    try:
        assert reopened.count("c") == 120
        assert reopened.search("c", vectors[42].tolist(), top_k=3) == during
        assert not (tmp_path / ".optimizing" / "c").exists()
    finally:
        reopened.close()


def test_edge_drop_cancels_a_running_optimization(tmp_path: Path) -> None:
    store = EdgeVectorStore(root=tmp_path, optimize_after_points=5)
    store.create_collection("c", dimension=DIM)
    store.upsert("c", [chunk("c", "d", i, unit(1, i)) for i in range(6)])

    store.drop_collection("c")

    assert not store.collection_exists("c")
    leftovers = [path.name for path in tmp_path.rglob("*") if path.name != ".optimizing"]
    assert leftovers == []
    store.create_collection("c", dimension=DIM)
    assert store.count("c") == 0
    store.close()


def test_edge_refuses_collection_names_that_are_not_folder_names(tmp_path: Path) -> None:
    store = EdgeVectorStore(root=tmp_path, optimize_after_points=10_000)
    for name in ["", "..", ".optimizing", "a/b"]:
        with pytest.raises(InvalidInput, match="cannot be a folder name"):
            store.create_collection(name, dimension=DIM)
    store.close()


# -- the server engine's faults, and the factory ------------------------------------------


def test_unreachable_server_is_unavailable_quickly() -> None:
    # check_compatibility=False: its background probe would warn from another thread.
    client = QdrantClient(url="http://127.0.0.1:1", timeout=1, check_compatibility=False)
    store = ServerVectorStore(client=client)
    started = time.monotonic()
    try:
        with pytest.raises(Unavailable, match=r"Qdrant at http://127\.0\.0\.1:1 cannot be reached"):
            store.search("c", unit(1), top_k=3)
        with pytest.raises(Unavailable, match="SEMSEARCH_QDRANT_URL"):
            store.collection_exists("c")
    finally:
        store.close()
    assert time.monotonic() - started < 5


def test_factory_picks_the_engine_from_settings(tmp_path: Path) -> None:
    embedded = open_vector_store(Settings(data_dir=tmp_path))
    assert isinstance(embedded, EdgeVectorStore)
    embedded.create_collection("c", dimension=DIM)
    assert (tmp_path / "shards" / "c").is_dir()
    embedded.close()
