"""Prometheus metrics of the core: embedding and ingestion.

The metric objects are module-level, registered once in prometheus-client's default registry
however many apps or workers a process creates; each process counts what it does itself.
Gauges that describe shared state (jobs in the catalog, the queue) are read when scraped.
"""

from __future__ import annotations

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.exposition import generate_latest

EMBEDDING_BATCH_SIZE = Histogram(
    "semsearch_embedding_batch_size",
    "Texts embedded per call of a model.",
    ["model", "role"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
EMBEDDING_SECONDS = Histogram(
    "semsearch_embedding_seconds",
    "Time a model takes to embed one batch (waiting for the model excluded).",
    ["model", "role"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUERY_CACHE_LOOKUPS = Counter(
    "semsearch_query_cache_lookups",
    "Queries looked up in the query-embedding cache, by model and outcome (hit, miss).",
    ["model", "outcome"],
)
INGEST_JOBS_FINISHED = Counter(
    "semsearch_ingest_jobs_finished",
    "Ingestion and re-index jobs this process ran to an end, by outcome (succeeded, failed).",
    ["kind", "outcome"],
)


def exposition(*, jobs_unfinished: int | None, queue_depth: int | None) -> bytes:
    """This process's metrics in Prometheus' text format, with the shared gauges read just now
    (None leaves a gauge out: its source could not be read)."""
    snapshot = CollectorRegistry()
    if jobs_unfinished is not None:
        Gauge(
            "semsearch_ingest_jobs_unfinished",
            "Jobs queued or running, in the catalog (all processes).",
            registry=snapshot,
        ).set(jobs_unfinished)
    if queue_depth is not None:
        Gauge(
            "semsearch_ingest_queue_depth",
            "Jobs waiting in the job queue (the ingestion thread's, or the broker's) to start.",
            registry=snapshot,
        ).set(queue_depth)
    return generate_latest(REGISTRY) + generate_latest(snapshot)


def serve_process_metrics(host: str, port: int) -> None:
    """Serve this process's metrics on their own port, from a daemon thread: for a process
    without the API (a Celery worker). OSError when the address is taken."""
    start_http_server(port, addr=host)
