"""Retrieval quality on a BEIR data set, measured through the service's real write and read paths.

A BEIR folder holds ``corpus.jsonl`` ({_id, title, text}), ``queries.jsonl`` ({_id, text}) and
``qrels/<split>.tsv`` (query-id, corpus-id, score; a header line). `evaluate_beir` creates a
collection, ingests the corpus with `ingest.pipeline` (the code a worker runs), asks every
judged query through `Searcher.search` (the code behind the search route), ranks documents by
their best passage and scores the ranking with pytrec_eval (the trec_eval measures).
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytrec_eval

from ingest.pipeline import IngestContext, run_job, submit_documents
from retrieval.catalog import CollectionMode, DocumentInput
from retrieval.collections import NewCollection
from retrieval.errors import InvalidInput
from retrieval.search import Hit
from retrieval.services import Services
from retrieval.units import SearchUnit

COLLECTION_MODES = ("dense", "hybrid", "lexical")

BEIR_METRICS = ("nDCG@10", "Recall@10", "Recall@100", "MRR@10")
"""The keys of `BeirReport.metrics`, in display order."""

DOCUMENTS_PER_JOB = 256
"""Documents per ingestion job: one job is one step of the progress bar."""

ProgressCallback = Callable[[str, int, int], None]
"""Called as (stage, done, total) while evaluating; stage is "ingest" (documents) or "query"."""


@dataclass(frozen=True, slots=True)
class BeirDocument:
    id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class BeirData:
    """One split of a BEIR data set: the corpus, the judged queries and their judgements."""

    name: str
    split: str
    documents: list[BeirDocument]
    """In the corpus file's order."""
    queries: dict[str, str]
    """Only the queries that the split judges, in the order of the qrels file."""
    qrels: dict[str, dict[str, int]]
    """query id -> corpus id -> relevance (0 = judged not relevant)."""


@dataclass(frozen=True, slots=True)
class IngestTiming:
    documents: int
    chunks: int
    seconds: float
    documents_per_s: float
    chunks_per_s: float


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Wall time of `Searcher.search` calls (clean, embed, query the store), in milliseconds."""

    queries: int
    mean_ms: float
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True, slots=True)
class BeirReport:
    dataset: str
    split: str
    mode: str
    model: str
    chunk_max_tokens: int
    documents: int
    queries: int
    top_k: int
    """Documents ranked per query (after best passage per document)."""
    queries_short_of_top_k: int
    """Queries that got fewer than top_k documents."""
    metrics: dict[str, float]
    """`BEIR_METRICS` -> mean over the judged queries (a query with no hit counts as 0)."""
    ingest: IngestTiming
    latency: LatencySummary

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- loading


def load_beir(folder: Path, *, split: str = "test") -> BeirData:
    """Read a BEIR folder; only the queries judged in ``qrels/<split>.tsv`` are kept.

    Raises FileNotFoundError for a missing file and ValueError for a malformed line or a judged
    query that queries.jsonl lacks.
    """
    qrels = _read_qrels(folder / "qrels" / f"{split}.tsv")
    all_queries = {
        str(row["_id"]): str(row["text"]) for row in _read_jsonl(folder / "queries.jsonl")
    }
    missing = [query_id for query_id in qrels if query_id not in all_queries]
    if missing:
        raise ValueError(
            f"{folder}: qrels/{split}.tsv judges {len(missing)} queries that queries.jsonl "
            f"lacks (first: {missing[0]!r})"
        )
    documents = [
        BeirDocument(
            id=str(row["_id"]), title=str(row.get("title") or ""), text=str(row.get("text") or "")
        )
        for row in _read_jsonl(folder / "corpus.jsonl")
    ]
    return BeirData(
        name=folder.resolve().name,
        split=split,
        documents=documents,
        queries={query_id: all_queries[query_id] for query_id in qrels},
        qrels=qrels,
    )


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
            if not isinstance(row, dict) or "_id" not in row:
                raise ValueError(f"{path}:{number}: expected an object with an _id")
            yield row


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            fields = line.rstrip("\r\n").split("\t")
            if fields == [""]:
                continue
            if len(fields) != 3:
                raise ValueError(f"{path}:{number}: expected query-id, corpus-id, score")
            query_id, corpus_id, score = fields
            if number == 1 and not score.lstrip("-").isdigit():
                continue  # the header line
            try:
                relevance = int(score)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: score {score!r} is not an integer") from exc
            qrels.setdefault(query_id, {})[corpus_id] = relevance
    return qrels


def sample_beir(
    data: BeirData,
    *,
    max_documents: int | None = None,
    max_queries: int | None = None,
    seed: int = 0,
) -> BeirData:
    """A smaller, still meaningful evaluation set.

    Queries: the first `max_queries` judged ones. Documents: every document judged for a kept
    query (even beyond `max_documents`), then a seeded random choice of the others up to
    `max_documents`, in corpus order.
    """
    query_ids = list(data.queries)[:max_queries] if max_queries is not None else list(data.queries)
    qrels = {query_id: data.qrels[query_id] for query_id in query_ids}
    documents = data.documents
    if max_documents is not None:
        judged = {corpus_id for judgements in qrels.values() for corpus_id in judgements}
        others = [doc.id for doc in data.documents if doc.id not in judged]
        room = max(0, max_documents - len(judged))
        chosen = judged | set(random.Random(seed).sample(others, min(room, len(others))))
        documents = [doc for doc in data.documents if doc.id in chosen]
    return BeirData(
        name=data.name,
        split=data.split,
        documents=documents,
        queries={query_id: data.queries[query_id] for query_id in query_ids},
        qrels=qrels,
    )


# -------------------------------------------------------------------------- evaluating


def new_evaluation_collection(
    name: str, *, mode: str, top_k: int = 100, model: str | None = None
) -> NewCollection:
    """The collection an evaluation creates: default chunking, every hit kept (threshold -1),
    on `model` (None: the default model).

    Raises InvalidInput for a mode that is not dense or hybrid.
    """
    if mode not in COLLECTION_MODES:
        raise InvalidInput(f"mode: {mode!r} is not one of {', '.join(COLLECTION_MODES)}")
    return NewCollection(
        name=name, threshold=-1.0, top_k=top_k, mode=CollectionMode(mode), model=model
    )


class InlineJobQueue:
    """A JobQueue that runs each job in the caller's thread as soon as it is submitted."""

    def __init__(self, context: IngestContext) -> None:
        self._context = context

    def submit(self, job_id: str) -> None:
        run_job(job_id, self._context, final_attempt=True)

    def close(self) -> None:
        pass

    def is_running(self) -> bool:
        return True

    def depth(self) -> int:
        return 0  # a job runs as it is submitted: none waits


def evaluate_beir(
    services: Services,
    data: BeirData,
    *,
    collection: str,
    mode: str = "dense",
    model: str | None = None,
    progress: ProgressCallback | None = None,
    top_k: int = 100,
) -> BeirReport:
    """Evaluate retrieval of `data` in a new collection named `collection`.

    1. create the collection on `model` (threshold -1 keeps every hit; the default chunking)
    2. ingest the corpus through the write path: `submit_documents` ▶ `run_job`, one job per
       `DOCUMENTS_PER_JOB` documents (title and text as a client would send them)
    3. per judged query: `Searcher.search` grouped by document (each document ranked by its
       best passage), the first `top_k` documents, in the order the search returns them
    4. nDCG@10, Recall@10, Recall@100 and MRR@10 with pytrec_eval, averaged over the queries

    The collection is left in place (the caller owns the data directory). Raises Conflict if
    the collection exists, InvalidInput for an unsupported mode or an empty query set, and
    RuntimeError if an ingestion job fails.
    """
    if not data.queries:
        raise InvalidInput("the evaluation set has no judged queries")
    record = services.collections.create(
        new_evaluation_collection(collection, mode=mode, model=model)
    )
    ingest = ingest_corpus(services, collection, data.documents, progress)
    queries = run_queries(services, data, collection=collection, top_k=top_k, progress=progress)
    return BeirReport(
        dataset=data.name,
        split=data.split,
        mode=mode,
        model=record.model,
        chunk_max_tokens=record.chunk_max_tokens,
        documents=len(data.documents),
        queries=len(data.queries),
        top_k=top_k,
        queries_short_of_top_k=queries.queries_short_of_top_k,
        metrics=score_run(data.qrels, queries.run),
        ingest=ingest,
        latency=queries.latency,
    )


@dataclass(frozen=True, slots=True)
class QueryRun:
    """The documents each judged query retrieved, and how long the queries took."""

    run: dict[str, dict[str, float]]
    """query id -> document id -> a score that keeps the search's order."""
    latency: LatencySummary
    queries_short_of_top_k: int


def run_queries(
    services: Services,
    data: BeirData,
    *,
    collection: str,
    top_k: int = 100,
    mode: CollectionMode | None = None,
    progress: ProgressCallback | None = None,
    unit: SearchUnit = SearchUnit.PASSAGE,
) -> QueryRun:
    """Every judged query through `Searcher.search`, the first `top_k` documents: grouped by
    document (each document ranked by its best passage), or with `unit` DOCUMENT ranked by
    the documents' mean vectors; `mode` overrides the collection's."""
    run: dict[str, dict[str, float]] = {}
    latencies_ms: list[float] = []
    short = 0
    for done, (query_id, query) in enumerate(data.queries.items(), 1):
        started = time.perf_counter()
        result = services.searcher.search(
            collection,
            query,
            top_k=top_k,
            threshold=-1.0,
            group_by_document=True,
            mode=mode,
            unit=unit,
        )
        latencies_ms.append((time.perf_counter() - started) * 1000)
        run[query_id] = ranking_scores(result.hits)
        if len(run[query_id]) < min(top_k, len(data.documents)):
            short += 1
        if progress is not None:
            progress("query", done, len(data.queries))
    latency = np.asarray(latencies_ms)
    return QueryRun(
        run=run,
        latency=LatencySummary(
            queries=len(latencies_ms),
            mean_ms=float(latency.mean()),
            p50_ms=float(np.percentile(latency, 50)),
            p95_ms=float(np.percentile(latency, 95)),
        ),
        queries_short_of_top_k=short,
    )


def ingest_corpus(
    services: Services,
    collection: str,
    documents: Sequence[BeirDocument],
    progress: ProgressCallback | None = None,
) -> IngestTiming:
    """Ingest documents through the write path, one job per `DOCUMENTS_PER_JOB` documents."""
    job_queue = InlineJobQueue(IngestContext.of(services))
    chunks = 0
    started = time.perf_counter()
    if progress is not None:
        progress("ingest", 0, len(documents))
    for batch_start in range(0, len(documents), DOCUMENTS_PER_JOB):
        batch = documents[batch_start : batch_start + DOCUMENTS_PER_JOB]
        inputs = [DocumentInput(id=doc.id, text=doc.text, title=doc.title or None) for doc in batch]
        job = submit_documents(services.catalog, job_queue, collection, inputs)
        job = services.catalog.get_job(job.id)
        if job.status != "succeeded":
            raise RuntimeError(f"ingestion job {job.id} ended {job.status}: {job.error}")
        chunks += job.chunks_done
        if progress is not None:
            progress("ingest", batch_start + len(batch), len(documents))
    seconds = time.perf_counter() - started
    return IngestTiming(
        documents=len(documents),
        chunks=chunks,
        seconds=seconds,
        documents_per_s=len(documents) / seconds if seconds > 0 else 0.0,
        chunks_per_s=chunks / seconds if seconds > 0 else 0.0,
    )


def ranking_scores(hits: Sequence[Hit]) -> dict[str, float]:
    """Document id -> a score that keeps the search's order (n for the first hit, n-1, ...).

    The order, not `Hit.score`, is the ranking: in hybrid mode hits come in fused order while
    `score` is the thresholded score.
    """
    return {hit.document_id: float(len(hits) - rank) for rank, hit in enumerate(hits)}


def score_run(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]
) -> dict[str, float]:
    """`BEIR_METRICS` of a run (query id -> document id -> score), averaged over `qrels`' queries.

    pytrec_eval's recip_rank has no cutoff, so MRR@10 is computed on the run cut to its top 10.
    A judged query that is missing from the run counts as 0.
    """
    qrels_copy = {query_id: dict(judgements) for query_id, judgements in qrels.items()}
    run_copy = {query_id: dict(ranking) for query_id, ranking in run.items()}
    top_10 = {
        query_id: dict(sorted(ranking.items(), key=lambda item: item[1], reverse=True)[:10])
        for query_id, ranking in run_copy.items()
    }
    per_query: dict[str, dict[str, float]] = pytrec_eval.RelevanceEvaluator(
        qrels_copy, {"ndcg_cut.10", "recall.10,100"}
    ).evaluate(run_copy)
    reciprocal_ranks: dict[str, dict[str, float]] = pytrec_eval.RelevanceEvaluator(
        qrels_copy, {"recip_rank"}
    ).evaluate(top_10)

    def mean(measures: dict[str, dict[str, float]], measure: str) -> float:
        return sum(measures.get(query_id, {}).get(measure, 0.0) for query_id in qrels) / max(
            1, len(qrels)
        )

    return {
        "nDCG@10": mean(per_query, "ndcg_cut_10"),
        "Recall@10": mean(per_query, "recall_10"),
        "Recall@100": mean(per_query, "recall_100"),
        "MRR@10": mean(reciprocal_ranks, "recip_rank"),
    }
