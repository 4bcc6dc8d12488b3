"""The vector store: both engines behave alike (congruence), Edge persists and optimises."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient
from qdrant_client.models import Distance, VectorParams

from retrieval.config import Settings
from retrieval.errors import Conflict, InvalidInput, NotFound, Unavailable
from retrieval.filters import And, DateRange, Match, MatchAny, Not, Or, Range, parse_filter
from retrieval.hnsw import BeamsBySize, HnswPlan
from retrieval.store import open_vector_store
from retrieval.store.base import (
    DENSE_VECTOR,
    DOCUMENT_VECTOR,
    LEXICAL_VECTOR,
    ChunkPayload,
    ChunkPoint,
    PayloadIndexKind,
    SparseVector,
    StoredHit,
    VectorStore,
    point_id,
)
from retrieval.store.edge import ENGINE_GRAPH, EdgeVectorStore, built_graphs
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


def cosine(left: list[float], right: list[float]) -> float:
    return float(np.dot(left, right) / (np.linalg.norm(left) * np.linalg.norm(right)))


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

    def indexes(shorthand: dict[str, str | int | float | bool]) -> list[int]:
        hits = store.search("c", unit(1), top_k=10, query_filter=parse_filter(shorthand))
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


# -- hybrid search ------------------------------------------------------------------------

QUERY_TERMS = SparseVector((10, 20), (1.0, 1.0))


def lexical(**weights: float) -> SparseVector:
    """A lexical vector from term ids written as t<id>=weight."""
    pairs = sorted((int(name[1:]), weight) for name, weight in weights.items())
    return SparseVector(tuple(i for i, _ in pairs), tuple(w for _, w in pairs))


def with_sparse(point: ChunkPoint, sparse: SparseVector | None) -> ChunkPoint:
    return ChunkPoint(id=point.id, vector=point.vector, payload=point.payload, sparse=sparse)


def idf(document_frequency: int, points_with_terms: int) -> float:
    """Qdrant's IDF modifier: ln((N - df + 0.5) / (df + 0.5) + 1)."""
    n, df = points_with_terms, document_frequency
    return math.log((n - df + 0.5) / (df + 0.5) + 1)


def fill_hybrid(store: VectorStore) -> None:
    """Five documents whose dense and lexical ranks differ (query: unit(1) and t10, t20).

    dense ranks: a b c d e; lexical ranks: c b d (a matches no term, e has no lexical vector).
    RRF with k=2: c 1/4+1/2, b 1/3+1/3, a 1/2, d 1/5+1/4, e 1/6: no two scores tie.
    """
    store.create_collection("c", dimension=DIM)
    store.upsert(
        "c",
        [
            with_sparse(chunk("c", "a", 0, unit(1, 0.1), lang="en"), lexical(t30=1.0)),
            with_sparse(chunk("c", "b", 0, unit(1, 0.5), lang="en"), lexical(t10=1.0)),
            with_sparse(chunk("c", "c", 0, unit(1, 1), lang="fr"), lexical(t10=1.0, t20=1.0)),
            with_sparse(chunk("c", "d", 0, unit(0.1, 1), lang="en"), lexical(t20=0.5)),
            chunk("c", "e", 0, unit(0, 0, 1), lang="en"),
        ],
    )


def documents(hits: list[StoredHit]) -> list[str]:
    return [hit.payload.document_id for hit in hits]


def test_hybrid_fuses_the_ranks_of_both_legs(store: VectorStore) -> None:
    fill_hybrid(store)

    hits = store.search("c", unit(1), sparse=QUERY_TERMS, top_k=10)

    assert documents(hits) == ["c", "b", "a", "d", "e"]
    expected_rrf = [1 / 4 + 1 / 2, 1 / 3 + 1 / 3, 1 / 2, 1 / 5 + 1 / 4, 1 / 6]
    assert [hit.score for hit in hits] == pytest.approx(expected_rrf, abs=1e-6)
    assert [hit.dense_score for hit in hits] == pytest.approx(
        [
            cosine(unit(1), unit(1, 1)),
            cosine(unit(1), unit(1, 0.5)),
            cosine(unit(1), unit(1, 0.1)),
            cosine(unit(1), unit(0.1, 1)),
            0.0,
        ],
        abs=1e-6,
    )
    # IDF over the 4 points that have a lexical vector; t10 and t20 are in 2 each.
    term_idf = idf(2, 4)
    assert [hit.lexical_score for hit in hits] == pytest.approx(
        [2 * term_idf, term_idf, 0.0, 0.5 * term_idf, 0.0], abs=1e-5
    )
    assert documents(store.search("c", unit(1), sparse=QUERY_TERMS, top_k=2)) == ["c", "b"]
    # Each hit carries its lexical vector's token ids; e has none.
    assert [hit.lexical_token_ids for hit in hits] == [
        {10, 20},
        {10},
        {30},
        {20},
        None,
    ]


def test_hybrid_hit_found_by_the_lexical_leg_alone_has_its_dense_score(
    store: VectorStore,
) -> None:
    fill_hybrid(store)

    # Legs of 3: dense a b c, lexical c b d. d comes from the lexical leg only.
    hits = store.search("c", unit(1), sparse=QUERY_TERMS, top_k=10, candidates=3)

    assert documents(hits) == ["c", "b", "a", "d"]
    assert hits[3].score == pytest.approx(1 / 4, abs=1e-6)
    assert hits[3].dense_score == pytest.approx(cosine(unit(1), unit(0.1, 1)), abs=1e-6)
    assert hits[3].lexical_score == pytest.approx(0.5 * idf(2, 4), abs=1e-5)
    assert hits[2].lexical_score == 0.0  # a: found by the dense leg alone


def test_dense_search_reports_its_score_as_dense_score(store: VectorStore) -> None:
    fill_hybrid(store)

    hits = store.search("c", unit(1), top_k=2)

    assert documents(hits) == ["a", "b"]
    assert [hit.dense_score for hit in hits] == [hit.score for hit in hits]
    assert [hit.lexical_score for hit in hits] == [None, None]
    assert [hit.lexical_token_ids for hit in hits] == [{30}, {10}]
    assert store.search("c", unit(0, 0, 1), top_k=1)[0].lexical_token_ids is None  # e


def test_hybrid_filters_both_legs(store: VectorStore) -> None:
    fill_hybrid(store)

    english = parse_filter({"lang": "en"})
    hits = store.search("c", unit(1), sparse=QUERY_TERMS, top_k=10, query_filter=english)

    # c, the best lexical match, is French: neither leg may bring it back, and the others
    # move up in both legs (dense a b d e, lexical b d).
    assert documents(hits) == ["b", "d", "a", "e"]
    assert [hit.score for hit in hits] == pytest.approx(
        [1 / 3 + 1 / 2, 1 / 4 + 1 / 3, 1 / 2, 1 / 5], abs=1e-6
    )


def test_hybrid_lexical_statistics_follow_deletes(store: VectorStore) -> None:
    fill_hybrid(store)
    store.delete_document("c", "a")
    store.upsert("c", [with_sparse(chunk("c", "b", 0, unit(1, 0.5), lang="en"), None)])

    hits = store.search("c", unit(1), sparse=QUERY_TERMS, top_k=10)

    # Live points with a lexical vector: c and d; t10 in c only, t20 in both.
    by_document = {hit.payload.document_id: hit for hit in hits}
    assert by_document["c"].lexical_score == pytest.approx(idf(1, 2) + idf(2, 2), abs=1e-5)
    assert by_document["d"].lexical_score == pytest.approx(0.5 * idf(2, 2), abs=1e-5)
    assert by_document["b"].lexical_score == 0.0


def test_hybrid_refuses_a_threshold_and_ill_formed_lexical_vectors(store: VectorStore) -> None:
    fill_hybrid(store)

    with pytest.raises(ValueError, match="threshold applies to dense search only"):
        store.search("c", unit(1), sparse=QUERY_TERMS, top_k=3, threshold=0.5)
    with pytest.raises(ValueError, match="candidates must be at least 1"):
        store.search("c", unit(1), sparse=QUERY_TERMS, top_k=3, candidates=0)
    for sparse, message in [
        (SparseVector((1, 2), (1.0,)), "2 indices but 1 values"),
        (SparseVector((3, 3), (1.0, 1.0)), "index 3 appears twice"),
        (SparseVector((-1,), (1.0,)), "index -1 is outside"),
        (SparseVector((1,), (math.nan,)), "not a finite number"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            store.search("c", unit(1), sparse=sparse, top_k=3)
        with pytest.raises(InvalidInput, match=message):
            store.upsert("c", [with_sparse(chunk("c", "x", 0, unit(1)), sparse)])


def test_unsorted_and_empty_lexical_vectors(store: VectorStore) -> None:
    fill_hybrid(store)
    shuffled = SparseVector((20, 10), (1.0, 1.0))
    store.upsert("c", [with_sparse(chunk("c", "f", 0, unit(0.05, 1)), SparseVector((), ()))])

    assert (
        store.search("c", unit(1), sparse=shuffled, top_k=10)[:5]
        == store.search("c", unit(1), sparse=QUERY_TERMS, top_k=10)[:5]
    )
    # An empty query vector leaves the dense leg alone; an empty stored one is no vector.
    hits = store.search("c", unit(1), sparse=SparseVector((), ()), top_k=10)
    assert documents(hits) == ["a", "b", "c", "d", "f", "e"]
    assert {hit.lexical_score for hit in hits} == {0.0}


# -- filters ------------------------------------------------------------------------------


def fill_filterable(store: VectorStore) -> None:
    store.create_collection("c", dimension=DIM)
    rows: list[dict[str, object]] = [
        {
            "lang": "en",
            "year": 2024,
            "price": 9.5,
            "public": True,
            "published": "2024-01-15T08:00:00Z",
        },
        {"lang": "fr", "year": 2023, "price": 20.0, "public": False, "published": "2023-06-01"},
        {
            "lang": "en",
            "year": 2022,
            "price": 49.99,
            "public": False,
            "published": "2024-06-01T12:00:00+02:00",
        },
        {
            "lang": "de",
            "year": 2024,
            "price": 50,
            "public": True,
            "published": "2025-02-01T00:00:00Z",
        },
        {"lang": "en", "year": 2021, "public": True},
    ]
    store.upsert(
        "c",
        [
            ChunkPoint(
                id=point_id("c", "d", i),
                vector=unit(1, i * 0.1),
                payload=ChunkPayload(
                    document_id="d", chunk_index=i, text=f"#{i}", start=0, end=1, metadata=row
                ),
            )
            for i, row in enumerate(rows)
        ],
    )


FILTER_CASES: list[tuple[object, list[int]]] = [
    ({"key": "lang", "match": "en"}, [0, 2, 4]),
    ({"key": "year", "match": 2024}, [0, 3]),
    ({"key": "price", "match": 20.0}, [1]),
    ({"key": "public", "match": False}, [1, 2]),
    ({"key": "public", "match": True}, [0, 3, 4]),
    ({"key": "lang", "any": ["fr", "de"]}, [1, 3]),
    ({"key": "year", "any": [2021, 2023]}, [1, 4]),
    ({"key": "price", "range": {"gte": 9.5, "lt": 50}}, [0, 1, 2]),
    ({"key": "price", "range": {"gt": 9.5, "lte": 50}}, [1, 2, 3]),
    ({"key": "published", "range": {"gte": "2024-01-01T00:00:00Z"}}, [0, 2, 3]),
    # 2 was published at 10:00 UTC: offsets are honoured on both sides.
    ({"key": "published", "range": {"lt": "2024-06-01T11:00:00+01:00"}}, [0, 1]),
    ({"key": "published", "range": {"lte": "2024-06-01T11:00:00+01:00"}}, [0, 1, 2]),
    ({"key": "published", "range": {"gt": "2024-01-15T08:00:00Z", "lt": "2025-01-01"}}, [2]),
    ({"must_not": [{"key": "lang", "match": "en"}]}, [1, 3]),
    # A chunk without the field (4 has no price) matches the negation of a range.
    ({"must_not": [{"key": "price", "range": {"lt": 30}}]}, [2, 3, 4]),
    ({"should": [{"key": "lang", "match": "fr"}, {"key": "year", "match": 2021}]}, [1, 4]),
    (
        {
            "must": [{"key": "public", "match": True}],
            "should": [
                {"key": "lang", "match": "de"},
                {"must": [{"key": "lang", "match": "en"}, {"key": "year", "range": {"lt": 2022}}]},
            ],
        },
        [3, 4],
    ),
    (
        {
            "must_not": [
                {"should": [{"key": "lang", "match": "fr"}, {"key": "price", "range": {"gt": 40}}]}
            ]
        },
        [0, 4],
    ),
    ({"lang": "en", "public": False}, [2]),
    ({"key": "missing", "match": "x"}, []),
]


def test_filters_of_every_kind(store: VectorStore) -> None:
    fill_filterable(store)

    for data, expected in FILTER_CASES:
        query_filter = parse_filter(data)
        dense = store.search("c", unit(1), top_k=10, query_filter=query_filter)
        hybrid = store.search("c", unit(1), sparse=QUERY_TERMS, top_k=10, query_filter=query_filter)
        assert sorted(hit.payload.chunk_index for hit in dense) == expected, data
        assert sorted(hit.payload.chunk_index for hit in hybrid) == expected, data


def test_the_filter_tree_can_be_built_directly(store: VectorStore) -> None:
    fill_filterable(store)
    since_2024 = DateRange("published", gte=datetime(2024, 1, 1, tzinfo=UTC))
    query_filter = Or((And((Match("lang", "en"), Not(since_2024))), MatchAny("year", (2023,))))

    hits = store.search("c", unit(1), top_k=10, query_filter=query_filter)

    assert sorted(hit.payload.chunk_index for hit in hits) == [1, 4]
    ranged = store.search("c", unit(1), top_k=10, query_filter=Range("year", gte=2023))
    assert sorted(hit.payload.chunk_index for hit in ranged) == [0, 1, 3]


def test_payload_indexes_do_not_change_answers(store: VectorStore) -> None:
    fill_filterable(store)
    before = [
        store.search("c", unit(1), top_k=10, query_filter=parse_filter(data))
        for data, _ in FILTER_CASES
    ]
    kinds: dict[str, PayloadIndexKind] = {
        "lang": "keyword",
        "year": "integer",
        "price": "float",
        "public": "bool",
        "published": "datetime",
    }
    for field, kind in kinds.items():
        store.create_payload_index("c", field, kind)
    store.create_payload_index("c", "lang", "keyword")  # idempotent

    after = [
        store.search("c", unit(1), top_k=10, query_filter=parse_filter(data))
        for data, _ in FILTER_CASES
    ]
    assert after == before
    with pytest.raises(InvalidInput, match="Unknown payload index kind 'text'"):
        store.create_payload_index("c", "lang", "text")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        store.create_payload_index("nope", "lang", "keyword")


# -- grouping by document -----------------------------------------------------------------


def fill_grouped(store: VectorStore) -> None:
    """Document "big" holds the 30 chunks nearest the query; a, b, c follow, one chunk each,
    and "far" has two chunks away from it. Every chunk shares the term t10."""
    store.create_collection("c", dimension=DIM)
    big = [chunk("c", "big", i, unit(1, 0.01 * i)) for i in range(30)]
    small = [chunk("c", name, 0, unit(1, 0.5 + 0.1 * i)) for i, name in enumerate("abc")]
    far = [chunk("c", "far", i, unit(0, 1, 0.1 * i)) for i in range(2)]
    store.upsert("c", [with_sparse(point, lexical(t10=1.0)) for point in big + small + far])


def test_group_by_document_keeps_the_best_chunk_of_each(store: VectorStore) -> None:
    fill_grouped(store)

    plain = store.search("c", unit(1), top_k=3)
    grouped = store.search("c", unit(1), top_k=3, group_by_document=True)

    assert documents(plain) == ["big", "big", "big"]
    # The first fetch (12 chunks) holds only "big": the store fetches more.
    assert documents(grouped) == ["big", "a", "b"]
    assert grouped[0].payload.chunk_index == 0
    assert grouped[1].score == pytest.approx(cosine(unit(1), unit(1, 0.5)), abs=1e-6)


def test_group_by_document_stops_when_the_collection_is_exhausted(store: VectorStore) -> None:
    fill_grouped(store)

    grouped = store.search("c", unit(1), top_k=10, group_by_document=True)
    assert documents(grouped) == ["big", "a", "b", "c", "far"]

    english = parse_filter({"key": "missing", "match": 1})
    assert store.search("c", unit(1), top_k=3, group_by_document=True, query_filter=english) == []
    thresholded = store.search("c", unit(1), top_k=10, group_by_document=True, threshold=0.88)
    assert documents(thresholded) == ["big", "a"]


def test_group_by_document_in_hybrid_mode(store: VectorStore) -> None:
    fill_grouped(store)

    grouped = store.search(
        "c", unit(1), sparse=QUERY_TERMS, top_k=4, group_by_document=True, candidates=8
    )

    # Every chunk has the same lexical score: the lexical leg's order is the engine's own,
    # so only the set of documents and one chunk per document are asserted.
    assert len(set(documents(grouped))) == len(grouped) == 4
    everything = store.search("c", unit(1), sparse=QUERY_TERMS, top_k=10, group_by_document=True)
    assert sorted(documents(everything)) == ["a", "b", "big", "c", "far"]
    assert all(hit.lexical_score == pytest.approx(idf(35, 35), abs=1e-5) for hit in everything)


# -- document-level vectors ---------------------------------------------------------------


def with_document_vector(point: ChunkPoint, vector: list[float]) -> ChunkPoint:
    return ChunkPoint(
        id=point.id, vector=point.vector, payload=point.payload, document_vector=vector
    )


def test_document_level_search_ranks_first_chunks_by_their_document_vectors(
    store: VectorStore,
) -> None:
    store.create_collection("c", dimension=DIM)
    assert store.has_document_vectors("c")
    # "near" has a chunk equal to the query but a mean far from it; "broad" the reverse.
    near = [chunk("c", "near", 0, unit(0, 1)), chunk("c", "near", 1, unit(1))]
    broad = [chunk("c", "broad", i, unit(1, 0.5, 0.1 * i)) for i in range(3)]
    store.upsert(
        "c",
        [
            with_document_vector(near[0], unit(0.2, 1)),
            near[1],
            with_document_vector(broad[0], unit(1, 0.4)),
            *broad[1:],
        ],
    )

    passages = store.search("c", unit(1), top_k=2)
    documents_ranked = store.search("c", unit(1), top_k=5, document_level=True)

    assert documents(passages) == ["near", "broad"]
    assert documents(documents_ranked) == ["broad", "near"]  # only points with the vector
    assert [hit.payload.chunk_index for hit in documents_ranked] == [0, 0]
    assert documents_ranked[0].score == pytest.approx(cosine(unit(1), unit(1, 0.4)), abs=1e-6)
    assert documents_ranked[0].dense_score == documents_ranked[0].score
    assert store.count("c") == 5  # a document vector adds no point
    thresholded = store.search("c", unit(1), top_k=5, document_level=True, threshold=0.5)
    assert documents(thresholded) == ["broad"]
    english = parse_filter({"key": "missing", "match": 1})
    assert store.search("c", unit(1), top_k=5, document_level=True, query_filter=english) == []
    with pytest.raises(ValueError, match="document-level search is dense"):
        store.search("c", unit(1), sparse=QUERY_TERMS, top_k=5, document_level=True)


def test_edge_keeps_document_vectors_on_disk_through_an_optimisation(tmp_path: Path) -> None:
    """Every point has a slot for the document vector: in memory it would double a
    collection's RSS for a vector that only document-unit searches read."""
    store = EdgeVectorStore(root=tmp_path, optimize_after_points=6)
    store.create_collection("c", dimension=DIM)
    store.upsert(
        "c",
        [with_document_vector(chunk("c", f"d{n}", 0, unit(1, n)), unit(n, 1)) for n in range(1, 7)],
    )
    store.wait_for_optimizations()

    assert store.optimizations_completed == 1
    config = json.loads((tmp_path / "c" / "edge_config.json").read_text(encoding="utf-8"))
    assert config["vectors"]["document"]["on_disk"] is True
    assert not config["vectors"]["dense"].get("on_disk")
    ranked = store.search("c", unit(4, 1), top_k=2, document_level=True)
    assert documents(ranked) == ["d4", "d5"]
    store.close()


def test_collections_made_before_document_vectors_say_so(tmp_path: Path) -> None:
    """A collection of the earlier layout (dense and lexical vectors only) still serves
    passages; a document-level search of it is NotFound."""
    edge = tmp_path / "shards"
    edge.mkdir()
    old_config = qe.EdgeConfig(
        vectors={DENSE_VECTOR: qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine)},
        sparse_vectors={LEXICAL_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    )
    qe.EdgeShard.create(str(edge / "old"), old_config).close()
    client = QdrantClient(path=str(tmp_path / "local"))
    client.create_collection(
        "old", vectors_config={DENSE_VECTOR: VectorParams(size=DIM, distance=Distance.COSINE)}
    )

    for store in (open_engine("edge", tmp_path), ServerVectorStore(client=client)):
        try:
            assert not store.has_document_vectors("old")
            store.upsert("old", [chunk("old", "d", 0, unit(1))])
            assert documents(store.search("old", unit(1), top_k=1)) == ["d"]
            with pytest.raises(NotFound, match="has no 'document' vectors"):
                store.search("old", unit(1), top_k=1, document_level=True)
        finally:
            store.close()


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
                    {"query_filter": parse_filter({"group": "g1"})},
                    {"query_filter": parse_filter({"group": "g2", "even": True}), "threshold": 0.0},
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


def random_hybrid_points(rng: np.random.Generator, dim: int, size: int) -> list[ChunkPoint]:
    vectors = rng.standard_normal((size, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    points = []
    for i in range(size):
        terms = np.sort(rng.choice(40, size=int(rng.integers(2, 8)), replace=False))
        weights = rng.uniform(0.2, 3.0, size=len(terms))
        sparse = (
            None
            if i % 5 == 0
            else SparseVector(tuple(int(t) for t in terms), tuple(float(w) for w in weights))
        )
        points.append(
            ChunkPoint(
                id=point_id("c", f"doc{i % 30}", i // 30),
                vector=vectors[i].tolist(),
                payload=ChunkPayload(
                    document_id=f"doc{i % 30}",
                    chunk_index=i // 30,
                    text=f"chunk {i}",
                    start=0,
                    end=1,
                    metadata={
                        "group": f"g{i % 3}",
                        "year": 2020 + i % 5,
                        "published": f"2024-{1 + i % 12:02d}-15T00:00:00Z",
                    },
                ),
                sparse=sparse,
            )
        )
    return points


def assert_same_ranking(edge_hits: list[StoredHit], server_hits: list[StoredHit]) -> None:
    """Same scores rank by rank; the same ids, where RRF ties (a point at rank r of one leg
    only, another at rank r of the other leg only) are compared as sets."""
    assert len(edge_hits) == len(server_hits)
    assert [hit.score for hit in edge_hits] == pytest.approx(
        [hit.score for hit in server_hits], abs=1e-6
    )
    start = 0
    while start < len(edge_hits):
        end = start + 1
        while end < len(edge_hits) and abs(edge_hits[end].score - edge_hits[start].score) < 1e-6:
            end += 1
        if end < len(edge_hits):  # a tie cut by top_k may hold different points
            assert {hit.id for hit in edge_hits[start:end]} == {
                hit.id for hit in server_hits[start:end]
            }
        start = end
    server_by_id = {hit.id: hit for hit in server_hits}
    for hit in edge_hits:
        twin = server_by_id.get(hit.id)
        if twin is not None:
            assert hit.payload == twin.payload
            assert hit.dense_score == pytest.approx(twin.dense_score, abs=1e-4)
            assert hit.lexical_score == pytest.approx(twin.lexical_score, abs=1e-4)


def test_engines_agree_on_hybrid_search(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    dim = 32
    points = random_hybrid_points(rng, dim, 150)
    queries = [
        (points[i].vector, SparseVector((3, 7, 19, 33), (1.0, 1.0, 1.0, 1.0))) for i in (1, 2)
    ]
    options: list[dict[str, object]] = [
        {},
        {"candidates": 6},
        {"query_filter": parse_filter({"group": "g1"})},
        {
            "query_filter": parse_filter(
                {
                    "should": [
                        {"key": "year", "range": {"gte": 2023}},
                        {"key": "published", "range": {"lt": "2024-03-01T00:00:00Z"}},
                    ],
                    "must_not": [{"key": "group", "any": ["g2"]}],
                }
            )
        },
        {"group_by_document": True},
        {"group_by_document": True, "query_filter": parse_filter({"group": "g0"})},
    ]

    answers: list[list[list[StoredHit]]] = []
    for kind in ENGINES:
        # Edge optimises in the background after 100 points: the later writes are replayed.
        store = open_engine(kind, tmp_path / kind, optimize_after_points=100)
        try:
            store.create_collection("c", dimension=dim)
            store.upsert("c", points[:110])
            store.upsert("c", points[90:])
            store.delete_document("c", "doc3", from_chunk=2)
            if isinstance(store, EdgeVectorStore):
                store.wait_for_optimizations()
                assert store.optimizations_completed == 1
            # Deletes and lexical vectors removed after the optimisation: the sparse index
            # of the new segments still counts them, the live IDF corpus does not.
            store.delete_document("c", "doc5")
            store.delete_document("c", "doc7", from_chunk=1)
            store.upsert("c", [with_sparse(point, None) for point in points[40:46]])
            answer = []
            for vector, sparse in queries:
                for option in options:
                    answer.append(store.search("c", vector, sparse=sparse, top_k=12, **option))  # type: ignore[arg-type]
            answers.append(answer)
        finally:
            store.close()

    edge, server = answers
    for edge_hits, server_hits in zip(edge, server, strict=True):
        assert edge_hits, "every query finds something"
        assert_same_ranking(edge_hits, server_hits)
    assert any(hit.lexical_score == 0.0 for hits in edge for hit in hits), (
        "some hits come from the dense leg alone"
    )
    assert any(hit.dense_score < hits[-1].dense_score for hits in edge for hit in hits[:-1]), (
        "fusion reorders the dense ranking"
    )


# -- Edge alone: persistence and background optimisation ---------------------------------


def test_edge_persists_across_stores(tmp_path: Path) -> None:
    first = EdgeVectorStore(root=tmp_path, optimize_after_points=10_000)
    first.create_collection("c", dimension=DIM)
    first.upsert("c", [chunk("c", "d", i, unit(1, i * 0.3), lang="en") for i in range(6)])
    first.delete_document("c", "d", from_chunk=5)
    before = first.search("c", unit(1, 0.5), top_k=3, query_filter=parse_filter({"lang": "en"}))
    first.close()

    second = EdgeVectorStore(root=tmp_path, optimize_after_points=10_000)
    try:
        assert second.collection_exists("c")
        assert second.count("c") == 5
        assert (
            second.search("c", unit(1, 0.5), top_k=3, query_filter=parse_filter({"lang": "en"}))
            == before
        )
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


def test_collections_of_the_unnamed_vector_layout_are_refused(tmp_path: Path) -> None:
    shard = tmp_path / "shards" / "old"
    shard.mkdir(parents=True)
    (shard / "edge_config.json").write_text('{"vectors": {"": {"size": 8, "distance": "Cosine"}}}')
    client = QdrantClient(path=str(tmp_path / "local"))
    client.create_collection("old", vectors_config=VectorParams(size=DIM, distance=Distance.COSINE))

    for store in (open_engine("edge", tmp_path), ServerVectorStore(client=client)):
        try:
            with pytest.raises(Conflict, match="predates named dense and lexical vectors"):
                store.create_collection("old", dimension=DIM)
        finally:
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
    embedded = open_vector_store(Settings(data_dir=tmp_path, hnsw_ef=4))
    assert isinstance(embedded, EdgeVectorStore)
    embedded.create_collection("c", dimension=DIM)
    assert (tmp_path / "shards" / "c").is_dir()
    embedded.close()


@pytest.mark.parametrize("kind", ENGINES)
def test_a_search_beam_leaves_exact_answers_alone(kind: str, tmp_path: Path) -> None:
    """An HNSW plan leaves the answers of dense and hybrid searches alone where a collection is
    too small to be HNSW-indexed: Edge is given the beam and scans exactly; qdrant-client's
    local mode ignores it. (Recall at 10^5 points
    with an index: benchmarks/hnsw.py.)"""
    points = [
        with_sparse(chunk("c", f"d{i}", 0, unit(1, 0.1 * i)), lexical(t10=20.0 - i))
        for i in range(20)
    ]
    answers = []
    narrow = HnswPlan(m=4, ef_construct=4, least_ef=4, ef_per_million_points=0)
    for folder, hnsw in ((tmp_path / "default", None), (tmp_path / "beam", narrow)):
        store = (
            EdgeVectorStore(root=folder, optimize_after_points=10_000, hnsw=hnsw)
            if kind == "edge"
            else ServerVectorStore(client=QdrantClient(path=str(folder)), hnsw=hnsw)
        )
        try:
            store.create_collection("c", dimension=DIM)
            store.upsert("c", points)
            answers.append(
                (
                    store.search("c", unit(1), top_k=5),
                    store.search("c", unit(1), sparse=QUERY_TERMS, top_k=5),
                )
            )
        finally:
            store.close()
    assert answers[0] == answers[1]
    assert documents(answers[0][0]) == ["d0", "d1", "d2", "d3", "d4"]


def test_the_search_beam_grows_with_the_collection_as_it_is_optimised(tmp_path: Path) -> None:
    """The beam is chosen for the shard's size when it is opened and after each background
    optimisation (which builds the graph it is for), and survives a restart."""
    plan = HnswPlan(m=8, ef_construct=16, least_ef=16, ef_per_million_points=100_000)
    store = EdgeVectorStore(root=tmp_path, optimize_after_points=300, hnsw=plan)
    rng = np.random.default_rng(0)
    try:
        store.create_collection("c", dimension=DIM)
        assert store.search_ef("c") == 16
        store.upsert("c", [chunk("c", f"d{i}", 0, list(rng.normal(size=DIM))) for i in range(500)])
        store.wait_for_optimizations()
        assert store.optimizations_completed == 1
        assert store.search_ef("c") == plan.search_ef(500) == 50
        assert documents(store.search("c", unit(1), top_k=3))  # the beam is accepted
    finally:
        store.close()
    reopened = EdgeVectorStore(root=tmp_path, optimize_after_points=300, hnsw=plan)
    try:
        assert reopened.search_ef("c") == 50
    finally:
        reopened.close()
    engine_default = EdgeVectorStore(root=tmp_path, optimize_after_points=300)
    try:
        assert engine_default.search_ef("c") is None
    finally:
        engine_default.close()


def test_a_new_collection_gets_the_planned_graph(tmp_path: Path) -> None:
    """The graph's density is written into the shard's configuration when it is made, and the
    background optimisation builds with it. (qdrant-client's local mode keeps no HNSW
    configuration, so the server store's equivalent is not observable here.)"""
    plan = HnswPlan(m=24, ef_construct=150, least_ef=64, ef_per_million_points=0)
    store = EdgeVectorStore(root=tmp_path, optimize_after_points=10_000, hnsw=plan)
    try:
        store.create_collection("c", dimension=DIM)
    finally:
        store.close()
    config = json.loads((tmp_path / "c" / "edge_config.json").read_text(encoding="utf-8"))
    assert (config["hnsw_config"]["m"], config["hnsw_config"]["ef_construct"]) == (24, 150)


GRAPH_DIM = 384
"""Enough bytes per point for the engine to build a graph over a segment of a few thousand
points (it indexes segments of about 10 MB of vectors and more)."""


def _graph_sized(collection: str, seed: int = 0) -> tuple[np.ndarray, list[ChunkPoint]]:
    """7,000 random points of GRAPH_DIM: their graph takes the optimising child a second or
    more, long enough for a test to watch it however busy the machine."""
    vectors = np.random.default_rng(seed).normal(size=(7_000, GRAPH_DIM))
    return vectors, [chunk(collection, f"d{i}", 0, list(v)) for i, v in enumerate(vectors)]


def _the_optimizer(root: Path) -> int:
    """The process id of the store's optimising child, as soon as it runs."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for pid in _processes_naming(str(root / ".optimizing")):
            return pid
        time.sleep(0.002)
    raise AssertionError("no optimising child started")


def test_a_collection_made_under_another_plan_is_rebuilt_with_the_current_one(
    tmp_path: Path,
) -> None:
    """A collection whose graph was built under other settings (or before the plan existed)
    gets the configured graph when the store opens it, rebuilt in the background with its
    points kept, rather than at a re-index; a rebuild cut short is started again at the next
    open, and a collection on the plan is left alone."""
    before = HnswPlan(m=8, ef_construct=16, least_ef=16, ef_per_million_points=0)
    after = HnswPlan(m=16, ef_construct=48, least_ef=16, ef_per_million_points=0)
    vectors, points = _graph_sized("c")
    store = EdgeVectorStore(root=tmp_path, optimize_after_points=5_000, hnsw=before)
    try:
        store.create_collection("c", dimension=GRAPH_DIM)
        store.upsert("c", points)
        store.wait_for_optimizations()
    finally:
        store.close()
    assert built_graphs(tmp_path / "c") == {(8, 16)}

    interrupted = EdgeVectorStore(root=tmp_path, optimize_after_points=5_000, hnsw=after)
    try:
        assert interrupted.count("c") == 7_000  # opening it starts the rebuild
        os.kill(_the_optimizer(tmp_path), signal.SIGKILL)  # a build cut short by a crash
        interrupted.wait_for_optimizations()
        assert interrupted.optimizations_completed == 0
    finally:
        interrupted.close()
    config = json.loads((tmp_path / "c" / "edge_config.json").read_text(encoding="utf-8"))
    assert (config["hnsw_config"]["m"], config["hnsw_config"]["ef_construct"]) == (16, 48)
    assert built_graphs(tmp_path / "c") == {(8, 16)}

    upgraded = EdgeVectorStore(root=tmp_path, optimize_after_points=5_000, hnsw=after)
    try:
        assert upgraded.count("c") == 7_000
        upgraded.wait_for_optimizations()
        assert upgraded.optimizations_completed == 1
        assert documents(upgraded.search("c", list(vectors[42]), top_k=1)) == ["d42"]
        assert upgraded.count("c") == 7_000
    finally:
        upgraded.close()
    assert built_graphs(tmp_path / "c") == {(16, 48)}

    unchanged = EdgeVectorStore(root=tmp_path, optimize_after_points=5_000, hnsw=after)
    try:
        assert unchanged.count("c") == 7_000
        unchanged.wait_for_optimizations()
        assert unchanged.optimizations_completed == 0
    finally:
        unchanged.close()


def test_closing_stops_an_optimisation_and_the_next_open_resumes_it(tmp_path: Path) -> None:
    """Closing the store (the service shutting down) does not wait for an index build, which
    takes minutes at 10^6 points: the child is stopped, the live shard is untouched, and
    the next open finds the unindexed points and starts the build again."""
    vectors, points = _graph_sized("c")
    store = EdgeVectorStore(root=tmp_path, optimize_after_points=5_000)
    try:
        store.create_collection("c", dimension=GRAPH_DIM)
        store.upsert("c", points)
        _the_optimizer(tmp_path)
    finally:
        store.close()
    assert store.optimizations_completed == 0
    assert not _processes_naming(str(tmp_path / ".optimizing"))
    assert built_graphs(tmp_path / "c") == set()

    reopened = EdgeVectorStore(root=tmp_path, optimize_after_points=5_000)
    try:
        assert reopened.count("c") == 7_000
        reopened.wait_for_optimizations()
        assert reopened.optimizations_completed == 1
        assert documents(reopened.search("c", list(vectors[7]), top_k=1)) == ["d7"]
    finally:
        reopened.close()
    assert built_graphs(tmp_path / "c") == {ENGINE_GRAPH}


def test_an_optimised_shard_that_does_not_load_gives_way_to_the_one_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the optimised copy, once swapped in, cannot be loaded, the shard set aside before
    the swap (it holds every write) is put back and serves on. A copy that passes its child's
    optimize() and the replay and then fails to load cannot be made on purpose, so the
    engine's load is wrapped to refuse the live folder while the set-aside one exists."""
    real_load = qe.EdgeShard.load
    live, set_aside = tmp_path / "c", tmp_path / ".optimizing" / "c.old"

    def load(path: str, config: qe.EdgeConfig | None = None) -> qe.EdgeShard:
        if Path(path) == live and set_aside.exists():
            raise Exception("Service runtime error: the optimised shard is damaged")
        return real_load(path, config)

    monkeypatch.setattr(qe.EdgeShard, "load", load)
    vectors = np.random.default_rng(0).normal(size=(600, DIM))
    store = EdgeVectorStore(root=tmp_path, optimize_after_points=500)
    try:
        store.create_collection("c", dimension=DIM)
        store.upsert("c", [chunk("c", f"d{i}", 0, list(v)) for i, v in enumerate(vectors)])
        store.wait_for_optimizations()
        assert store.optimizations_completed == 0
        assert not set_aside.exists()
        assert store.count("c") == 600
        assert documents(store.search("c", list(vectors[7]), top_k=1)) == ["d7"]
        store.upsert("c", [chunk("c", "later", 0, unit(1))])
        assert store.count("c") == 601
    finally:
        store.close()


def test_one_collection_is_optimised_at_a_time(tmp_path: Path) -> None:
    """Each optimising child holds a copy of its shard: two collections due at once are
    optimised one after the other, both in the end."""
    store = EdgeVectorStore(root=tmp_path, optimize_after_points=5_000)
    most_at_once = 0
    try:
        for name in ("a", "b"):
            store.create_collection(name, dimension=GRAPH_DIM)
        for seed, name in enumerate(("a", "b")):
            store.upsert(name, _graph_sized(name, seed)[1])
        deadline = time.monotonic() + 120
        while store.optimizations_completed < 2 and time.monotonic() < deadline:
            children = _processes_naming(str(tmp_path / ".optimizing"))
            most_at_once = max(most_at_once, len(children))
            time.sleep(0.002)
    finally:
        store.close()
    assert store.optimizations_completed == 2
    assert most_at_once == 1


def test_a_segment_description_of_another_layout_leaves_the_graph_alone(tmp_path: Path) -> None:
    """The graph check reads the engine's segment descriptions; one it cannot read (another
    engine version's layout, a truncated file) is skipped with a warning, never an error
    that would keep the collection from opening."""
    for name, text in (("other", '{"config": {"vectors": {}}}'), ("cut", '{"config": {"vec')):
        (tmp_path / "segments" / name).mkdir(parents=True)
        (tmp_path / "segments" / name / "segment.json").write_text(text, encoding="utf-8")
    assert built_graphs(tmp_path) == set()


@pytest.mark.parametrize(("with_documents", "on_disk"), [(True, True), (True, None), (False, None)])
def test_a_collection_made_without_a_plan_takes_the_plan_when_opened_with_one(
    tmp_path: Path, with_documents: bool, on_disk: bool | None
) -> None:
    """A shard whose configuration names no graph (the engine's 16 / 100, as collections made
    before the plan existed, in each layout they had: document vectors on disk, in memory,
    or none) gets the plan written into it and keeps its vectors as they were; with no graph
    built yet there is nothing to rebuild."""
    vectors = {DENSE_VECTOR: qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine)}
    if with_documents:
        vectors[DOCUMENT_VECTOR] = qe.EdgeVectorParams(
            size=DIM, distance=qe.Distance.Cosine, on_disk=on_disk
        )
    sparse = {LEXICAL_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)}
    qe.EdgeShard.create(
        str(tmp_path / "c"), qe.EdgeConfig(vectors=vectors, sparse_vectors=sparse)
    ).close()
    made = json.loads((tmp_path / "c" / "edge_config.json").read_text(encoding="utf-8"))
    assert "hnsw_config" not in made

    plan = HnswPlan(m=24, ef_construct=150, least_ef=64, ef_per_million_points=0)
    planned = EdgeVectorStore(root=tmp_path, optimize_after_points=300, hnsw=plan)
    try:
        planned.upsert("c", [chunk("c", "a", 0, unit(1)), chunk("c", "b", 0, unit(0, 1))])
        assert documents(planned.search("c", unit(1), top_k=2)) == ["a", "b"]
        assert planned.has_document_vectors("c") is with_documents
        planned.wait_for_optimizations()
        assert planned.optimizations_completed == 0
    finally:
        planned.close()
    config = json.loads((tmp_path / "c" / "edge_config.json").read_text(encoding="utf-8"))
    assert (config["hnsw_config"]["m"], config["hnsw_config"]["ef_construct"]) == (24, 150)
    assert config["vectors"] == made["vectors"]
    assert config["sparse_vectors"] == made["sparse_vectors"]


def test_a_configuration_the_engine_refuses_leaves_the_collection_as_it_was(
    tmp_path: Path,
) -> None:
    """A shard made with what this store does not write (here float16 dense vectors) cannot
    take the plan read back from its file: it opens as it was, with a warning."""
    qe.EdgeShard.create(
        str(tmp_path / "c"),
        qe.EdgeConfig(
            vectors={
                DENSE_VECTOR: qe.EdgeVectorParams(
                    size=DIM,
                    distance=qe.Distance.Cosine,
                    datatype=qe.VectorStorageDatatype.Float16,
                )
            },
            sparse_vectors={LEXICAL_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        ),
    ).close()
    plan = HnswPlan(m=24, ef_construct=150, least_ef=64, ef_per_million_points=0)
    store = EdgeVectorStore(root=tmp_path, optimize_after_points=300, hnsw=plan)
    try:
        store.upsert("c", [chunk("c", "a", 0, unit(1))])
        assert documents(store.search("c", unit(1), top_k=1)) == ["a"]
    finally:
        store.close()
    config = json.loads((tmp_path / "c" / "edge_config.json").read_text(encoding="utf-8"))
    assert "hnsw_config" not in config


@pytest.mark.parametrize(
    ("points", "beam"),
    [(0, 256), (100_000, 256), (250_000, 256), (500_000, 512), (10**6, 1024), (10**8, 4096)],
)
def test_the_service_beam_is_its_floor_until_the_collection_outgrows_it(
    points: int, beam: int
) -> None:
    assert Settings().hnsw_plan.search_ef(points) == beam


def test_an_impossible_plan_is_refused() -> None:
    with pytest.raises(ValueError, match="impossible HNSW plan"):
        HnswPlan(m=16, ef_construct=100, least_ef=0, ef_per_million_points=1)
    with pytest.raises(ValueError, match="negative"):
        HnswPlan(m=16, ef_construct=100, least_ef=8, ef_per_million_points=-1)


def _processes_naming(marker: str) -> list[int]:
    """Ids of this machine's processes whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_text(errors="replace"):
                found.append(int(entry.name))
        except OSError:  # the process ended while being read
            continue
    return found


def test_the_index_is_built_at_a_lower_priority_than_the_service(tmp_path: Path) -> None:
    """The optimising child runs `optimize_niceness` below this process, so the build takes
    only the cores that searches and ingestion leave idle."""
    rng = np.random.default_rng(0)
    store = EdgeVectorStore(root=tmp_path, optimize_after_points=500, optimize_niceness=7)
    seen: set[int] = set()
    try:
        store.create_collection("c", dimension=DIM)
        vectors = rng.normal(size=(500, DIM))
        store.upsert("c", [chunk("c", f"d{i}", 0, list(row)) for i, row in enumerate(vectors)])
        deadline = time.monotonic() + 60
        while store.optimizations_completed == 0 and time.monotonic() < deadline:
            for pid in _processes_naming(str(tmp_path / ".optimizing")):
                try:
                    seen.add(os.getpriority(os.PRIO_PROCESS, pid))
                except ProcessLookupError:
                    continue
            time.sleep(0.002)  # the child lives about a second (its start, the load, the close)
    finally:
        store.close()
    assert min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7) in seen
    assert store.optimizations_completed == 1


def test_a_remote_collections_size_is_read_again_only_after_the_refresh_interval() -> None:
    """The server store's beams (a Qdrant server's count is a round trip): one read per
    collection per interval, a new one after it and after the collection is forgotten."""
    plan = HnswPlan(m=16, ef_construct=100, least_ef=10, ef_per_million_points=1_000_000)
    now = [0.0]
    sizes = {"a": 50, "b": 5}
    reads: list[str] = []

    def size_of(name: str) -> Callable[[], int]:
        def read() -> int:
            reads.append(name)
            return sizes[name]

        return read

    beams = BeamsBySize(plan, refresh_s=60.0, clock=lambda: now[0])
    assert beams.beam("a", size_of("a")) == 50
    assert beams.beam("b", size_of("b")) == 10
    sizes["a"] = 80
    now[0] = 59.0
    assert beams.beam("a", size_of("a")) == 50  # read 59 s ago: trusted
    now[0] = 60.0
    assert beams.beam("a", size_of("a")) == 80
    beams.forget("b")
    sizes["b"] = 30
    assert beams.beam("b", size_of("b")) == 30
    assert reads == ["a", "b", "a", "b"]
