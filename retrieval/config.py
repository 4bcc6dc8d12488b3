"""Settings: every knob of the service, read once from SEMSEARCH_* environment variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from retrieval.errors import ConfigurationError


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

    model_config = SettingsConfigDict(env_prefix="SEMSEARCH_", extra="forbid", frozen=True)

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
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
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
    ingest_retry_delays_s: tuple[float, ...] = Field(
        default=(1.0, 4.0, 15.0),
        min_length=1,
        description="Embedded mode: waits between tries of a job while a backing service is "
        "down; after the last the job fails (or, if even that cannot be recorded, is tried "
        "again at the last delay until the catalog is back).",
    )
    optimize_after_points: int = Field(
        default=20_000,
        ge=1,
        description="Embedded mode: build the HNSW index in the background once this many "
        "points were written since the last build.",
    )

    @field_validator("database_url", "qdrant_url", "broker_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

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
