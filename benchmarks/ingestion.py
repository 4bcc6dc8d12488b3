"""Ingestion speed against the model's own encode rate, and search latency during an import.

In one process, on a fresh temporary data folder (embedded: SQLite, Qdrant Edge, the
in-process ingestion thread), with the real bundled model (all-MiniLM-L6-v2 by default):

1. pipeline: SciFact abstracts (``--documents``, all 5,183 with 0) are submitted in jobs of
   1,000 and indexed by the real pipeline (clean, split, embed, BM25 vectors, upsert, catalog);
   documents/s and chunks/s from the first submission to the last job's end;
2. raw encode: the same chunks, as the pipeline embedded them (title heading each chunk,
   term map applied), split beforehand, through the model's engine alone (no turns, no
   slices) in batches of 1, 4, 16 and 64 (the pipeline hands the model slices of about
   1,500 characters, one or two SciFact chunks, and torch answers waiting queries between
   the layers of a slice); chunks/s. The pipeline's share of the best of them is the figure
   to watch (target 85%). The rates drift as the shared machine grows busier or quieter, so
   the order cancels drift: pipeline, raw encodes at 1, 4, 16, 64, then at 64, 16, 4, 1, then
   the pipeline again into a second collection; each figure is the chunks over the time of
   both of its passes;
3. search latency: SciFact queries against the indexed collection one after another, first
   with nothing else running (idle), then while a second collection takes the same documents
   (during ingest); p50 and p95 of each, and during / idle (target p95 ratio at most 3).

    python benchmarks/ingestion.py                      # 2,000 documents
    python benchmarks/ingestion.py --documents 0        # all of SciFact
    python benchmarks/ingestion.py --model multilingual-e5-small

The data is read from ../shared/data/scifact (next to the repository); without it the
benchmark says so and stops.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ingest.pipeline import (
    FINISHED,
    IndexTarget,
    IngestContext,
    plan_document,
    submit_documents,
)
from ingest.thread_queue import ThreadJobQueue
from retrieval.catalog import DocumentInput, JobStatus
from retrieval.collections import NewCollection
from retrieval.config import Settings
from retrieval.models.base import EmbeddingModel, TextRole
from retrieval.services import Services

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
JOB_DOCUMENTS = 1_000


def load_corpus(limit: int) -> list[DocumentInput]:
    documents = []
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            documents.append(DocumentInput(id=row["_id"], text=row["text"], title=row["title"]))
            if limit and len(documents) >= limit:
                break
    return documents


def load_queries(limit: int | None = None) -> list[str]:
    """SciFact's query texts, the first `limit` of them (None: all)."""
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()][:limit]


def ingest(
    services: Services,
    queue: ThreadJobQueue,
    name: str,
    docs: list[DocumentInput],
    *,
    model: str | None,
) -> int:
    """Index `docs` into a new collection; the chunks written."""
    services.collections.create(NewCollection(name=name, top_k=10, model=model))
    return index_documents(services, queue, name, docs)


def index_documents(
    services: Services, queue: ThreadJobQueue, name: str, docs: list[DocumentInput]
) -> int:
    """Submit `docs` to the collection in jobs of JOB_DOCUMENTS and wait for them; the chunks
    written. Exits if a job failed."""
    job_ids = [
        submit_documents(services.catalog, queue, name, docs[start : start + JOB_DOCUMENTS]).id
        for start in range(0, len(docs), JOB_DOCUMENTS)
    ]
    chunks = 0
    for job_id in job_ids:
        while (job := services.catalog.get_job(job_id)).status not in FINISHED:
            time.sleep(0.05)
        if job.status is JobStatus.FAILED:
            raise SystemExit(f"job {job_id} failed: {job.error}")
        chunks += job.chunks_done
    return chunks


RAW_BATCH_SIZES = (1, 4, 16, 64)
"""Batch sizes of the raw encode. The pipeline hands the model slices of about
PASSAGE_SLICE_CHARS characters: one or two SciFact chunks."""


def indexed_texts(services: Services, name: str) -> tuple[list[str], EmbeddingModel]:
    """The collection's chunks as the pipeline embedded them, and the model."""
    collection = services.catalog.get_collection(name)
    target = IndexTarget.of(collection, IngestContext.of(services))
    ids = list(services.catalog.document_hashes(name))
    texts = [
        plan.indexed_text(chunk, target.term_map)
        for document in services.catalog.get_documents(name, ids)
        for plan in [plan_document(document, target)]
        for chunk in plan.chunks
    ]
    return texts, target.model


def raw_encode_rates(texts: list[str], model: EmbeddingModel) -> dict[int, float]:
    """Chunks/s of the model's engine alone (no turns, no slices) at each batch size, over two
    passes: the batch sizes in order, then in reverse."""
    seconds = dict.fromkeys(RAW_BATCH_SIZES, 0.0)
    for order in (RAW_BATCH_SIZES, RAW_BATCH_SIZES[::-1]):
        for batch_size in order:
            started = time.perf_counter()
            for start in range(0, len(texts), batch_size):
                model.engine.encode(texts[start : start + batch_size], role=TextRole.PASSAGE)
            seconds[batch_size] += time.perf_counter() - started
    return {batch_size: 2 * len(texts) / spent for batch_size, spent in seconds.items()}


def latencies(
    services: Services, name: str, queries: list[str], until: threading.Event | None
) -> list[float]:
    """Seconds per search; with `until`, queries cycle until it is set."""
    measured = []
    position = 0
    while True:
        query = queries[position % len(queries)]
        started = time.perf_counter()
        services.searcher.search(name, query)
        measured.append(time.perf_counter() - started)
        position += 1
        if until is None and position >= len(queries):
            return measured
        if until is not None and until.is_set():
            return measured


def percentile(values: list[float], share: float) -> float:
    """The `share` percentile, interpolated as numpy does (share 0.5: the median)."""
    return float(np.percentile(values, share * 100))


def main(args: argparse.Namespace) -> None:
    console = Console()
    if not SCIFACT.is_dir():
        sys.exit(f"SciFact is not at {SCIFACT} (../shared/data/scifact next to the repository)")
    documents = load_corpus(args.documents)
    queries = load_queries(args.queries)
    with tempfile.TemporaryDirectory(prefix="semsearch-bench-") as folder:
        # No query cache: the searches cycle through the same queries.
        services = Services.open(Settings(data_dir=Path(folder), query_cache_size=0))
        queue = ThreadJobQueue(context=IngestContext.of(services))
        try:
            services.models.get(args.model or services.models.default.name).encode_queries(["x"])
            started = time.perf_counter()
            chunks = ingest(services, queue, "bench", documents, model=args.model)
            pipeline_s = time.perf_counter() - started
            texts, model = indexed_texts(services, "bench")
            raw = raw_encode_rates(texts, model)
            started = time.perf_counter()
            chunks += ingest(services, queue, "bench-again", documents, model=args.model)
            pipeline_s += time.perf_counter() - started

            idle = latencies(services, "bench", queries, None)
            done = threading.Event()
            during: list[float] = []
            searcher = threading.Thread(
                target=lambda: during.extend(latencies(services, "bench", queries, done))
            )
            searcher.start()
            ingest(services, queue, "bench-2", documents, model=args.model)
            done.set()
            searcher.join()
        finally:
            queue.close()
            services.close()

    pipeline_rate = chunks / pipeline_s
    best = max(raw, key=raw.__getitem__)
    speed = Table(
        title=f"ingestion: {len(documents)} SciFact documents, {chunks // 2} chunks, "
        "each rate over two passes"
    )
    for column in ("", "documents/s", "chunks/s", "pipeline vs it"):
        speed.add_column(column, justify="right")
    for batch_size, rate in raw.items():
        label = f"raw encode, batches of {batch_size}"
        if batch_size == best:
            label += " (best)"
        speed.add_row(label, "", f"{rate:.1f}", f"{pipeline_rate / rate:.2f}")
    speed.add_row("pipeline", f"{2 * len(documents) / pipeline_s:.1f}", f"{pipeline_rate:.1f}", "")
    console.print(speed)
    search = Table(title="search latency (ms), one query after another")
    for column in ("", "searches", "p50", "p95", "p95 vs idle"):
        search.add_column(column, justify="right")
    for label, values in (("idle (baseline)", idle), ("during ingest", during)):
        search.add_row(
            label,
            str(len(values)),
            f"{statistics.median(values) * 1000:.0f}",
            f"{percentile(values, 0.95) * 1000:.0f}",
            f"{percentile(values, 0.95) / percentile(idle, 0.95):.2f}",
        )
    console.print(search)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=2_000, help="0: all of SciFact")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--model", default=None, help="a registered model (default: default)")
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args())
