"""Threshold calibration through the HTTP API, on samples of real labelled data."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli import cli
from tests.conftest import LIVE_TIMEOUT_S, wait_for_job
from tests.test_api import create_collection, ingest, search

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BANKING = DATA / "banking77"
BQ = DATA / "zh-pairs" / "bq.tsv"

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"the evaluation data is not at {DATA}")

INDEXED_INTENTS = 12
OUT_OF_SCOPE_INTENTS = 4
EXAMPLES_PER_INTENT = 4
QUERIES_PER_INTENT = 5


def banking_rows(split: str) -> dict[str, list[str]]:
    by_intent: dict[str, list[str]] = defaultdict(list)
    with (BANKING / f"{split}.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            by_intent[row["category"]].append(row["text"])
    return by_intent


@pytest.fixture
def intents(api: TestClient) -> tuple[TestClient, list[dict[str, Any]]]:
    """A collection of example questions of 12 intents, and labelled test questions: of those
    intents (relevant = their examples) and of 4 intents it does not hold (out of scope)."""
    train, test = banking_rows("train"), banking_rows("test")
    names = sorted(train)[: INDEXED_INTENTS + OUT_OF_SCOPE_INTENTS]
    indexed, outside = names[:INDEXED_INTENTS], names[INDEXED_INTENTS:]
    create_collection(api, name="bank", mode="dense")
    documents = [
        {"id": f"{intent}-{n}", "text": text, "metadata": {"intent": intent}}
        for intent in indexed
        for n, text in enumerate(train[intent][:EXAMPLES_PER_INTENT])
    ]
    ingest(api, documents, name="bank")
    samples = [
        {
            "query": text,
            "relevant": [f"{intent}-{n}" for n in range(EXAMPLES_PER_INTENT)]
            if intent in indexed
            else [],
        }
        for intent in indexed + outside
        for text in test[intent][:QUERIES_PER_INTENT]
    ]
    return api, samples


def calibrate(api: TestClient, body: dict[str, Any], name: str = "bank") -> dict[str, Any]:
    response = api.post(f"/collections/{name}/calibrate", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_intent_samples_choose_a_threshold_that_keeps_its_promise(
    intents: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    api, samples = intents
    result = calibrate(api, {"queries": samples, "target": {"precision": 0.8}})

    assert (result["shape"], result["mode"], result["model"]) == (
        "queries",
        "dense",
        "all-MiniLM-L6-v2",
    )
    assert result["samples"] == len(samples) == 80
    assert (result["answerable"], result["unanswerable"]) == (60, 20)
    assert result["target"] == {"kind": "precision", "value": 0.8}
    assert result["stale"] == []
    assert result["applied"] is False
    thresholds = [point["threshold"] for point in result["curve"]]
    assert thresholds == sorted(thresholds, reverse=True)
    promised = result["promised"]
    assert promised["precision"]["value"] >= 0.8
    assert (
        promised["precision"]["low"]
        < promised["precision"]["value"]
        < promised["precision"]["high"]
    )
    assert result["reached"]["precision"]["trials"] > 0
    assert result["reached"]["recall"]["trials"] == 60  # every in-scope query held out once

    # The promise is what the search itself does at that threshold, top_k 1.
    kept = correct = answered = rejected = 0
    for sample in samples:
        hits = search(api, sample["query"], name="bank", threshold=result["threshold"], top_k=1)[
            "hits"
        ]
        kept += len(hits)
        right = bool(hits) and hits[0]["document_id"] in sample["relevant"]
        correct += right
        answered += right and bool(sample["relevant"])
        rejected += not hits and not sample["relevant"]
    assert (promised["precision"]["successes"], promised["precision"]["trials"]) == (correct, kept)
    assert promised["recall"]["successes"] == answered
    assert promised["rejection"]["successes"] == rejected
    # 80 samples cannot promise a precision within a few points: the answer says so.
    assert any("too wide to promise" in warning for warning in result["warnings"])
    assert api.get("/collections/bank").json()["threshold"] == 0.5  # not applied


def test_apply_stores_the_threshold_and_a_term_map_change_makes_it_stale(
    intents: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    api, samples = intents
    result = calibrate(api, {"queries": samples, "apply": True})
    assert result["target"]["kind"] == "f1"
    assert api.get("/collections/bank").json()["threshold"] == result["threshold"]
    kept = api.get("/collections/bank/calibration").json()
    assert kept["threshold"] == result["threshold"]
    assert kept["stale"] == []

    patched = api.patch("/collections/bank", json={"term_map": {"top up": "add money"}})
    assert wait_for_job(api, patched.json()["reindex"]["job_id"])["status"] == "succeeded"

    assert api.get("/collections/bank/calibration").json()["stale"] == ["the term map changed"]


def test_the_curve_is_drawn_as_a_png(intents: tuple[TestClient, list[dict[str, Any]]]) -> None:
    api, samples = intents
    assert api.get("/collections/bank/calibration.png").status_code == 404
    calibrate(api, {"queries": samples, "target": {"recall": 0.9}})

    response = api.get("/collections/bank/calibration.png")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(response.content) > 10_000


def bq_pairs(count: int) -> list[dict[str, Any]]:
    with BQ.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [
        {"a": row["sentence1"], "b": row["sentence2"], "match": row["label"] == "1"}
        for row in rows[:count]
    ]


def test_matching_pairs_calibrate_an_e5_collection(api: TestClient) -> None:
    create_collection(api, name="zh", model="multilingual-e5-small")
    pairs = bq_pairs(120)

    result = calibrate(api, {"pairs": pairs, "target": {"precision": 0.7}}, name="zh")

    assert result["shape"] == "pairs"
    assert result["answerable"] == sum(pair["match"] for pair in pairs)
    # E5's cosines live in a high band: the threshold lands there, far above MiniLM's 0.5.
    assert 0.75 < result["threshold"] < 0.99
    assert result["promised"]["recall"]["trials"] == result["answerable"]
    assert result["reached"]["precision"]["trials"] > 0


def test_too_few_samples_say_how_many_of_each_are_needed(api: TestClient) -> None:
    create_collection(api, name="zh")
    response = api.post("/collections/zh/calibrate", json={"pairs": bq_pairs(12)})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("pairs: calibration needs at least 20 samples")
    assert "matching pairs" in detail
    assert "non-matching pairs" in detail

    only_positive = [{"query": "lost card", "relevant": ["x"]}] * 25
    response = api.post("/collections/zh/calibrate", json={"queries": only_positive})
    assert response.status_code == 422
    assert "got 25 queries with relevant documents and 0 out-of-scope" in response.json()["detail"]


def test_a_sample_naming_an_unknown_document_is_named(
    intents: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    api, samples = intents
    samples[3] = {"query": samples[3]["query"], "relevant": ["no-such-document"]}
    response = api.post("/collections/bank/calibrate", json={"queries": samples})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "queries: 1 relevant document ids are not in collection 'bank': 'no-such-document'"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, 'give either "queries" or "pairs"'),
        ({"queries": [], "pairs": []}, 'give either "queries" or "pairs"'),
        (
            {"pairs": [], "target": {"precision": 0.9, "recall": 0.9}},
            "give a precision or a recall to reach, not both",
        ),
        ({"pairs": [], "target": {"precision": 1.5}}, "target.precision: Input should be less"),
    ],
)
def test_malformed_requests_are_422(api: TestClient, body: dict[str, Any], message: str) -> None:
    create_collection(api, name="kb")
    response = api.post("/collections/kb/calibrate", json=body)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_calibrating_an_unknown_collection_is_404(api: TestClient) -> None:
    response = api.post("/collections/nope/calibrate", json={"pairs": bq_pairs(30)})
    assert response.status_code == 404
    assert api.get("/collections/nope/calibration").status_code == 404


def test_the_cli_prints_the_curve_applies_and_plots(live_url: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=live_url, timeout=LIVE_TIMEOUT_S) as client:
        created = client.post("/collections", json={"name": "zh", "model": "multilingual-e5-small"})
        assert created.status_code == 201, created.text
    samples = tmp_path / "pairs.csv"
    with samples.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "match"])
        writer.writerows((p["a"], p["b"], int(p["match"])) for p in bq_pairs(60))
    plot = tmp_path / "curve.png"

    result = CliRunner().invoke(
        cli,
        [
            "calibrate",
            "zh",
            str(samples),
            "--url",
            live_url,
            "--precision",
            "0.7",
            "--apply",
            "--plot",
            str(plot),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "threshold" in result.output
    assert "precision" in result.output
    assert "applied to the collection" in result.output
    assert "reached on held-out samples" in result.output
    assert plot.read_bytes().startswith(b"\x89PNG")
    with httpx.Client(base_url=live_url, timeout=LIVE_TIMEOUT_S) as client:
        kept = client.get("/collections/zh/calibration").json()
        assert client.get("/collections/zh").json()["threshold"] == kept["threshold"]


def test_the_cli_names_a_bad_samples_line_and_a_stopped_service(tmp_path: Path) -> None:
    samples = tmp_path / "queries.jsonl"
    samples.write_text('{"query": "lost card", "relevant": ["a"]}\n{"query": ""}\n')
    result = CliRunner().invoke(
        cli, ["calibrate", "kb", str(samples), "--url", "http://127.0.0.1:1"]
    )
    assert result.exit_code == 2
    output = " ".join(result.output.split())  # rich wraps long lines
    assert f"{samples}:2: query: String should have at least 1 character" in output

    samples.write_text('{"query": "lost card", "relevant": ["a"]}\n')
    result = CliRunner().invoke(
        cli, ["calibrate", "kb", str(samples), "--url", "http://127.0.0.1:1"]
    )
    assert result.exit_code == 2
    assert "cannot reach the semsearch service at http://127.0.0.1:1" in " ".join(
        result.output.split()
    )


def test_auto_mode_is_calibrated_in_every_mode_and_keeps_the_best(api: TestClient) -> None:
    """Product titles: the lexical leg finds codes the model reads as noise."""
    create_collection(api, name="shop", mode="auto")
    products = [
        {"id": f"p{n}", "title": f"Part {code}", "text": f"Spare part {code} for the {kind}."}
        for n, (code, kind) in enumerate(
            (f"XK-{4000 + n * 37}", kind)
            for n, kind in enumerate(["mixer", "blender", "toaster", "kettle", "grinder"] * 6)
        )
    ]
    ingest(api, products, name="shop")
    samples = [{"query": p["title"].split()[1], "relevant": [p["id"]]} for p in products]
    samples += [{"query": f"ZQ-{n}", "relevant": []} for n in range(8)]

    result = calibrate(api, {"queries": samples, "apply": True}, name="shop")

    assert result["auto_mode"] in ("lexical", "hybrid")
    tried = {summary["mode"]: summary for summary in result["modes"]}
    assert set(tried) == {"dense", "lexical", "hybrid"}
    assert tried[result["auto_mode"]]["reached_f1"] >= tried["dense"]["reached_f1"]
    collection = api.get("/collections/shop").json()
    assert (collection["mode"], collection["effective_mode"]) == ("auto", result["auto_mode"])
    assert search(api, "XK-4037", name="shop")["mode"] == result["auto_mode"]
