"""Hybrid search, the language check, filters and grouping through the HTTP API."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.test_api import create_collection, ingest, search

BQ_PAIRS = Path(__file__).resolve().parents[2] / "shared" / "data" / "zh-pairs" / "bq.tsv"

PRODUCTS: list[dict[str, Any]] = [
    {
        "id": "trail-shoe",
        "title": "Trail running shoes",
        "text": "Lightweight trail running shoes with a grippy sole for muddy paths.",
        "metadata": {"category": "shoes", "price": 89.0, "released": "2024-03-01T00:00:00Z"},
    },
    {
        "id": "road-shoe",
        "title": "Road running shoes",
        "text": "Cushioned road running shoes for long distances on asphalt.",
        "metadata": {"category": "shoes", "price": 149.0, "released": "2025-06-01T00:00:00Z"},
    },
    {
        "id": "trail-jacket",
        "title": "Trail running jacket",
        "text": "A waterproof jacket for running on trails in the rain.",
        "metadata": {"category": "jackets", "price": 79.0, "released": "2023-09-15T00:00:00Z"},
    },
    {
        "id": "hiking-boot",
        "title": "Hiking boots",
        "text": "Leather hiking boots with ankle support for rocky trails.",
        "metadata": {"category": "shoes", "price": 59.5, "released": "2022-01-10T00:00:00Z"},
    },
]


@pytest.fixture
def shop(api: TestClient) -> TestClient:
    create_collection(
        api,
        name="shop",
        threshold=0.0,
        filterable={"category": "keyword", "price": "float", "released": "datetime"},
    )
    ingest(api, PRODUCTS, name="shop")
    return api


def ids(result: dict[str, Any]) -> list[str]:
    return [hit["document_id"] for hit in result["hits"]]


def test_product_search_with_a_price_range_and_a_category(shop: TestClient) -> None:
    shop_filter = {
        "must": [
            {"key": "category", "match": "shoes"},
            {"key": "price", "range": {"gte": 50, "lte": 100}},
        ]
    }
    result = search(shop, "shoes for running on trails", name="shop", filter=shop_filter)
    assert ids(result)[0] == "trail-shoe"
    assert set(ids(result)) <= {"trail-shoe", "hiking-boot"}


@pytest.mark.parametrize(
    ("query_filter", "expected"),
    [
        ({"category": "jackets"}, {"trail-jacket"}),
        ({"must_not": [{"key": "category", "match": "shoes"}]}, {"trail-jacket"}),
        ({"key": "category", "any": ["jackets", "boots"]}, {"trail-jacket"}),
        (
            {
                "should": [
                    {"key": "price", "range": {"lt": 60}},
                    {"key": "category", "match": "jackets"},
                ]
            },
            {"hiking-boot", "trail-jacket"},
        ),
        (
            {"key": "released", "range": {"gte": "2024-01-01T00:00:00Z"}},
            {"trail-shoe", "road-shoe"},
        ),
        (
            {
                "must": [{"key": "category", "match": "shoes"}],
                "must_not": [{"should": [{"key": "price", "range": {"gt": 100}}]}],
            },
            {"trail-shoe", "hiking-boot"},
        ),
    ],
)
def test_filters(shop: TestClient, query_filter: dict[str, Any], expected: set[str]) -> None:
    for mode in ("dense", "hybrid"):
        result = search(shop, "running", name="shop", filter=query_filter, top_k=10, mode=mode)
        assert set(ids(result)) == expected, mode


@pytest.mark.parametrize(
    ("query_filter", "message"),
    [
        ({"key": "price", "between": [1, 2]}, "filter"),
        ({"key": "price", "range": {"gte": "ten"}}, "filter.range.gte:"),
        ({"must": [{"key": "price", "range": {"gte": "ten"}}]}, "filter.must[0].range.gte:"),
        ({"must": []}, "filter.must:"),
        (
            {
                "must": [
                    {
                        "must": [
                            {"must": [{"must": [{"must": [{"must": [{"key": "a", "match": 1}]}]}]}]}
                        ]
                    }
                ]
            },
            "filter",
        ),
    ],
)
def test_bad_filters_are_422_naming_the_problem(
    shop: TestClient, query_filter: dict[str, Any], message: str
) -> None:
    response = shop.post(
        "/collections/shop/search", json={"query": "running", "filter": query_filter}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(message), response.json()["detail"]


def test_group_by_document_returns_each_document_once(api: TestClient) -> None:
    create_collection(api, name="manuals", threshold=-1.0, chunking={"max_tokens": 32})
    manual = " ".join(
        f"Step {n}: tighten bolt {n} of the bicycle frame with the torque wrench."
        for n in range(20)
    )
    ingest(
        api,
        [
            {"id": "bike", "text": manual},
            {"id": "car", "text": "Change the car's oil every ten thousand kilometres."},
            {"id": "boat", "text": "Rinse the boat's engine with fresh water after each trip."},
        ],
        name="manuals",
    )
    chunks = search(api, "tighten the bicycle bolts", name="manuals", top_k=5)
    assert ids(chunks).count("bike") == 5

    grouped = search(api, "tighten the bicycle bolts", name="manuals", top_k=3, group_by="document")
    assert sorted(ids(grouped)) == ["bike", "boat", "car"]
    assert ids(grouped)[0] == "bike"
    assert grouped["hits"][0]["score"] == chunks["hits"][0]["score"]


def bq_positive_pairs(limit: int) -> list[tuple[str, str]]:
    with BQ_PAIRS.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        pairs = [(row["sentence1"], row["sentence2"]) for row in rows if row["label"] == "1"]
    unique: dict[str, str] = {}
    for question, match in pairs:
        unique.setdefault(match, question)
    return [(question, match) for match, question in list(unique.items())[:limit]]


@pytest.fixture
def chinese(api: TestClient) -> tuple[TestClient, list[tuple[str, str]]]:
    if not BQ_PAIRS.is_file():
        pytest.skip(f"the evaluation data is not at {BQ_PAIRS.parent.parent}")
    pairs = bq_positive_pairs(80)
    create_collection(api, name="bq", threshold=0.0, top_k=5)
    ingest(
        api,
        [{"id": f"q{n}", "text": match} for n, (_, match) in enumerate(pairs)],
        name="bq",
    )
    return api, pairs


def test_chinese_collection_carries_the_language_warning_and_defaults_to_hybrid(
    chinese: tuple[TestClient, list[tuple[str, str]]],
) -> None:
    api, pairs = chinese
    collection = api.get("/collections/bq").json()
    assert collection["mode"] == "auto"
    assert collection["effective_mode"] == "hybrid"
    share = collection["language"]["unknown_word_piece_share"]
    assert 0.5 < share < 0.9
    assert "does not read this language" in collection["language"]["warning"]

    result = search(api, pairs[0][0], name="bq")
    assert result["mode"] == "hybrid"
    assert result["warning"] == collection["language"]["warning"]
    hit = result["hits"][0]
    assert hit["fused_score"] is not None
    assert 0.0 <= hit["lexical_score"] <= 1.0
    assert hit["score"] == hit["dense_score"]  # the cosine in every mode


def test_hybrid_finds_chinese_documents_that_dense_alone_misses(
    chinese: tuple[TestClient, list[tuple[str, str]]],
) -> None:
    api, pairs = chinese
    found: dict[str, set[int]] = {"dense": set(), "hybrid": set()}
    for n, (question, _) in enumerate(pairs):
        for mode, found_by_mode in found.items():
            result = search(api, question, name="bq", top_k=5, threshold=-1.0, mode=mode)
            if f"q{n}" in ids(result):
                found_by_mode.add(n)
    only_hybrid = found["hybrid"] - found["dense"]
    assert len(only_hybrid) >= 10, found
    assert len(found["hybrid"]) > len(found["dense"]) * 1.3, found


def test_english_collection_has_no_warning(shop: TestClient) -> None:
    collection = shop.get("/collections/shop").json()
    assert collection["language"]["warning"] is None
    assert collection["language"]["unknown_word_piece_share"] < 0.05
    assert collection["effective_mode"] == "dense"
    assert search(shop, "running shoes", name="shop")["warning"] is None


def test_titles_are_matched_semantically(api: TestClient) -> None:
    create_collection(api, name="catalog", threshold=0.0, mode="dense")
    # The same text for all three: only the titles can tell them apart.
    products = [
        {"id": product, "title": title, "text": "Stainless steel body, 1200 W."}
        for product, title in (
            ("espresso", "Espresso machine"),
            ("blender", "Kitchen blender"),
            ("kettle", "Electric kettle"),
        )
    ]
    ingest(api, products, name="catalog")
    result = search(api, "coffee maker", name="catalog")
    assert ids(result)[0] == "espresso"
    assert result["hits"][0]["score"] > result["hits"][1]["score"] + 0.05
    hit = result["hits"][0]
    assert hit["text"] == "Stainless steel body, 1200 W."
    assert (hit["start"], hit["end"]) == (0, len(hit["text"]))


def test_lexical_mode_returns_only_what_the_lexical_leg_finds(shop: TestClient) -> None:
    result = search(shop, "waterproof jacket", name="shop", mode="lexical", threshold=0.0)
    assert result["mode"] == "lexical"
    assert ids(result) == ["trail-jacket"]
    hit = result["hits"][0]
    assert hit["lexical_score"] == 1.0
    assert hit["score"] == hit["dense_score"] < 1.0  # the cosine, whatever the mode
    assert search(shop, "cushioned asphalt", name="shop", mode="lexical")["hits"][0][
        "document_id"
    ] == ("road-shoe")


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_the_lexical_score_reads_documents_in_the_words_of_the_term_map(
    api: TestClient, mode: str
) -> None:
    """Queries and documents are both rewritten by the term map before they are embedded and
    tokenised: a query in jargon covers the document that uses the same jargon fully."""
    create_collection(
        api, name="support", mode=mode, threshold=-1, term_map={"wifi": "wireless network"}
    )
    ingest(api, [{"id": "router", "text": "The wifi drops every night."}], name="support")

    hit = search(api, "wifi drops", name="support")["hits"][0]

    assert hit["text"] == "The wifi drops every night."  # hits keep the original words
    assert hit["lexical_score"] == 1.0  # wireless, network and drop are all in the chunk


def test_identical_hybrid_calls_return_identical_hits(api: TestClient) -> None:
    """Many RRF scores tie (k = 2); ties are broken by cosine, then point id, not by chance."""
    create_collection(api, name="faq", threshold=-1.0, top_k=10, mode="hybrid")
    questions = [
        {"id": f"q{n}", "text": f"How do I change the {thing} of my account, step {n}?"}
        for n, thing in enumerate(["e-mail", "password", "name", "phone", "address"] * 4)
    ]
    ingest(api, questions, name="faq")
    first = search(api, "change account settings", name="faq")
    assert len(first["hits"]) == 10
    for _ in range(5):
        again = search(api, "change account settings", name="faq")
        assert [(h["document_id"], h["fused_score"]) for h in again["hits"]] == [
            (h["document_id"], h["fused_score"]) for h in first["hits"]
        ]
    fused = [hit["fused_score"] for hit in first["hits"]]
    assert fused == sorted(fused, reverse=True)
