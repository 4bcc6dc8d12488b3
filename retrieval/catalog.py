"""The catalog: collections, documents and ingestion jobs in SQL (SQLite or PostgreSQL).

This is the only module that knows SQLAlchemy (besides the Alembic migrations). Callers get
frozen dataclasses, never ORM objects, and SQLAlchemy's errors are translated into
retrieval.errors here:

    OperationalError, InterfaceError, DisconnectionError, pool TimeoutError -> Unavailable
    IntegrityError on a taken collection name                               -> Conflict
    any other IntegrityError (a concurrent writer won a race)               -> Conflict

Every method runs one short transaction of its own, so one Catalog may be shared by the
API's thread pool and an ingestion thread.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Row, make_url
from sqlalchemy.exc import (
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.expression import Executable

from retrieval.access import ApiKeyRecord, IssuedKey, Scope
from retrieval.errors import ConfigurationError, Conflict, InvalidInput, NotFound, Unavailable

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 4_000
"""Error texts stored on documents and jobs are cut to this length."""

_CONNECT_TIMEOUT_S = 5
_SQLITE_BUSY_TIMEOUT_S = 30.0
_WRITE_OPTION = "semsearch_write"
_IN_CLAUSE_BATCH = 500
_SUPPORTED_DIALECTS = ("sqlite", "postgresql")

LANGUAGE_COUNTS_MAX_AGE_S = 2.0
"""How long a collection's language counts are reused while this process writes nothing: the
bound on how late a search sees documents another process (a Celery worker) indexed."""
_MIGRATION_LOCK_KEY = 0x73656D73  # "sems"


class DocumentStatus(StrEnum):
    PENDING = "pending"
    """Staged; its current content is not (yet) in the vector store."""
    INDEXED = "indexed"
    """The chunks of its current content are in the vector store."""
    FAILED = "failed"
    """The last ingestion of it failed; see its error."""


class CollectionMode(StrEnum):
    """How a collection is searched."""

    AUTO = "auto"
    """Hybrid when the model cannot read most of the collection's text, dense otherwise."""
    DENSE = "dense"
    """The model's embeddings alone."""
    HYBRID = "hybrid"
    """The dense and lexical legs fused by reciprocal rank."""
    LEXICAL = "lexical"
    """The lexical leg alone: BM25 over stemmed words and CJK characters and bigrams."""


class JobKind(StrEnum):
    INGEST = "ingest"
    """Index the documents a request staged."""
    REINDEX = "reindex"
    """Re-embed every document of a collection into a new generation of vectors."""


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


_UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def new_store_name(collection: str) -> str:
    """A vector-store collection name never used before: a job still writing to the vectors of
    a deleted (or re-indexed) collection can never write into its successor's."""
    return f"{collection}.{uuid.uuid4().hex[:12]}"


def utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class CollectionSpec:
    """The settable fields of a collection, as given when it is created."""

    name: str
    threshold: float
    top_k: int
    term_map: Mapping[str, str]
    chunk_max_tokens: int
    chunk_overlap_sentences: int
    model: str
    dimension: int
    mode: CollectionMode = CollectionMode.AUTO
    filterable: Mapping[str, str] = field(default_factory=dict)
    """Metadata fields with a payload index: field -> keyword|integer|float|bool|datetime."""


@dataclass(frozen=True)
class IndexSettings:
    """What a collection's vectors are made with: changing any of it means re-embedding."""

    model: str
    dimension: int
    term_map: Mapping[str, str]
    chunk_max_tokens: int
    chunk_overlap_sentences: int

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dimension": self.dimension,
            "term_map": dict(self.term_map),
            "chunk_max_tokens": self.chunk_max_tokens,
            "chunk_overlap_sentences": self.chunk_overlap_sentences,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IndexSettings:
        return cls(
            model=str(data["model"]),
            dimension=int(data["dimension"]),
            term_map=dict(data["term_map"]),
            chunk_max_tokens=int(data["chunk_max_tokens"]),
            chunk_overlap_sentences=int(data["chunk_overlap_sentences"]),
        )


@dataclass(frozen=True)
class Reindex:
    """A re-index under way: the settings it builds with, where, and the job that builds."""

    job_id: str
    store_name: str
    settings: IndexSettings


@dataclass(frozen=True)
class CollectionRecord:
    id: int
    name: str
    threshold: float
    top_k: int
    term_map: dict[str, str]
    chunk_max_tokens: int
    chunk_overlap_sentences: int
    model: str
    """The name of the embedding model whose vectors the collection holds."""
    dimension: int
    mode: CollectionMode
    filterable: dict[str, str]
    created_at: datetime
    updated_at: datetime
    store_name: str
    """The vector-store collection that serves searches (a new one per re-index)."""
    reindex: Reindex | None = None
    """The re-index under way, if any; searches keep using `store_name` meanwhile."""
    calibration: dict[str, Any] | None = None
    """The last threshold calibration from labelled samples (retrieval/calibrator.py)."""

    @property
    def calibrated_auto_mode(self) -> CollectionMode | None:
        """The mode an applied calibration found best for `auto`, while the model is the same."""
        kept = self.calibration
        if not kept or not kept.get("applied") or kept["basis"]["model"] != self.model:
            return None
        auto_mode = kept["result"].get("auto_mode")
        return CollectionMode(auto_mode) if auto_mode else None

    @property
    def index_settings(self) -> IndexSettings:
        return IndexSettings(
            model=self.model,
            dimension=self.dimension,
            term_map=self.term_map,
            chunk_max_tokens=self.chunk_max_tokens,
            chunk_overlap_sentences=self.chunk_overlap_sentences,
        )

    def built_with(self, settings: IndexSettings, *, store_name: str) -> CollectionRecord:
        """This collection as it will be once vectors made with `settings` serve it."""
        return replace(
            self,
            model=settings.model,
            dimension=settings.dimension,
            term_map=dict(settings.term_map),
            chunk_max_tokens=settings.chunk_max_tokens,
            chunk_overlap_sentences=settings.chunk_overlap_sentences,
            store_name=store_name,
            reindex=None,
        )


@dataclass(frozen=True)
class DocumentInput:
    """A document as a client uploads it; `id` is the client's own document id."""

    id: str
    text: str
    title: str | None = None
    source: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DocumentRecord:
    collection: str
    id: str
    text: str
    title: str | None
    source: str | None
    metadata: dict[str, Any]
    content_hash: str
    indexed_hash: str | None
    """The content_hash whose chunks are in the vector store, if any."""
    status: DocumentStatus
    chunk_count: int
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class IndexedDocument:
    """What an ingest or a re-index wrote for one document: the content it embedded and its
    counts."""

    content_hash: str
    chunk_count: int
    word_pieces: int
    unknown_word_pieces: int


@dataclass(frozen=True)
class IndexState:
    """What the catalog says the vector store holds of a document (ingest/reconcile.py)."""

    status: DocumentStatus
    indexed_hash: str | None
    chunk_count: int
    """Points 0..chunk_count-1 are in the store when the document is 'indexed'."""


@dataclass(frozen=True)
class JobRecord:
    id: str
    collection: str
    status: JobStatus
    documents_total: int
    documents_done: int
    chunks_total: int
    chunks_done: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    kind: JobKind = JobKind.INGEST
    documents_unchanged: int = 0
    """Documents submitted with the content already indexed: nothing to embed for them."""
    parts: int = 0
    """How many part jobs the job was split into (0: it runs itself); its progress is theirs."""
    parent_id: str | None = None
    """The job this one is a part of, if any."""

    @property
    def whole_id(self) -> str:
        """The job the client submitted: the one this is a part of, or this one."""
        return self.parent_id or self.id


def content_hash(doc: DocumentInput) -> str:
    """sha256 (hex) of the canonical JSON of the document's text, title, source and metadata.

    Re-uploading a document with the same hash as the one indexed is a no-op for ingestion.
    """
    canonical = {
        "text": doc.text,
        "title": doc.title,
        "source": doc.source,
        "metadata": dict(doc.metadata),
    }
    try:
        encoded = json.dumps(
            canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"metadata of document {doc.id!r} is not plain JSON: {exc}; use strings, numbers, "
            "booleans, null, lists and objects"
        ) from exc
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _truncate(error: str) -> str:
    if len(error) <= MAX_ERROR_CHARS:
        return error
    return error[: MAX_ERROR_CHARS - 15] + " ...[truncated]"


# --------------------------------------------------------------------------- models


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class CollectionRow(Base):
    __tablename__ = "collections"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[float] = mapped_column(Float)
    top_k: Mapped[int] = mapped_column(Integer)
    term_map: Mapped[dict[str, str]] = mapped_column(JSON)
    chunk_max_tokens: Mapped[int] = mapped_column(Integer)
    chunk_overlap_sentences: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(256))
    dimension: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(8), default=CollectionMode.AUTO.value)
    filterable: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    store_name: Mapped[str] = mapped_column(String(80))
    generation: Mapped[int] = mapped_column(Integer, default=0)
    """Re-indexes so far."""
    reindex: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The re-index under way: {"job_id", "store_name", "settings": IndexSettings}."""
    calibration: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (CheckConstraint("status IN ('pending', 'indexed', 'failed')", name="status"),)

    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    document_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    title: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    doc_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    indexed_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    word_pieces: Mapped[int] = mapped_column(Integer, default=0)
    """Word pieces of the indexed text under the model's tokenizer."""
    unknown_word_pieces: Mapped[int] = mapped_column(Integer, default=0)
    """Of those, the ones the tokenizer maps to its unknown token ([UNK])."""
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        Index(None, "collection_id"),
        Index(None, "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default=JobKind.INGEST.value)
    status: Mapped[str] = mapped_column(String(16))
    documents_total: Mapped[int] = mapped_column(Integer, default=0)
    documents_done: Mapped[int] = mapped_column(Integer, default=0)
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    documents_unchanged: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When a running job last recorded progress: a stale one lost its worker."""
    parts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Part jobs this job was split into; a job with parts runs nothing itself."""
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )


class JobDocumentRow(Base):
    """Which documents a job ingests, in order. No foreign key to documents on purpose:
    a document deleted while its job waits is skipped by the job, not an error."""

    __tablename__ = "job_documents"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document_id: Mapped[str] = mapped_column(String(256))


class ReindexedDocumentRow(Base):
    """What a re-index has written into its next store collection for one document, kept
    until the re-index swaps in or is given up: its parts share the documents through it,
    and a re-index resumed after an interruption skips what it holds."""

    __tablename__ = "reindexed_documents"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    """The re-index's own job (the one its parts belong to)."""
    document_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    chunk_count: Mapped[int] = mapped_column(Integer)
    word_pieces: Mapped[int] = mapped_column(Integer)
    unknown_word_pieces: Mapped[int] = mapped_column(Integer)


class ApiKeyRow(Base):
    """An API key: its public id and the SHA-256 of its token (never the token)."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("token_hash"),)

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    collections: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def _api_key_record(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.key_id,
        name=row.name,
        scopes=frozenset(Scope(scope) for scope in row.scopes),
        collections=None if row.collections is None else tuple(row.collections),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _collection_record(row: CollectionRow | Row[Any]) -> CollectionRecord:
    return CollectionRecord(
        id=row.id,
        name=row.name,
        threshold=row.threshold,
        top_k=row.top_k,
        term_map=dict(row.term_map),
        chunk_max_tokens=row.chunk_max_tokens,
        chunk_overlap_sentences=row.chunk_overlap_sentences,
        model=row.model,
        dimension=row.dimension,
        mode=CollectionMode(row.mode),
        filterable=dict(row.filterable),
        created_at=row.created_at,
        updated_at=row.updated_at,
        store_name=row.store_name,
        reindex=_reindex(row.reindex),
        calibration=dict(row.calibration) if row.calibration is not None else None,
    )


def _reindex(data: Mapping[str, Any] | None) -> Reindex | None:
    if data is None:
        return None
    return Reindex(
        job_id=str(data["job_id"]),
        store_name=str(data["store_name"]),
        settings=IndexSettings.from_json(data["settings"]),
    )


def _document_record(collection: str, row: DocumentRow) -> DocumentRecord:
    return DocumentRecord(
        collection=collection,
        id=row.document_id,
        text=row.text,
        title=row.title,
        source=row.source,
        metadata=dict(row.doc_metadata),
        content_hash=row.content_hash,
        indexed_hash=row.indexed_hash,
        status=DocumentStatus(row.status),
        chunk_count=row.chunk_count,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _job_record(collection: str, row: JobRow, session: Session) -> JobRecord:
    """The job as clients see it: a job with parts reports the sum of their progress."""
    documents_done, chunks_done, chunks_total = (
        row.documents_done,
        row.chunks_done,
        row.chunks_total,
    )
    if row.parts:
        totals = session.execute(
            select(
                func.coalesce(func.sum(JobRow.documents_done), 0),
                func.coalesce(func.sum(JobRow.chunks_done), 0),
                func.coalesce(func.sum(JobRow.chunks_total), 0),
            ).where(JobRow.parent_id == row.id)
        ).one()
        documents_done, chunks_done, chunks_total = (int(total) for total in totals)
    return JobRecord(
        id=row.id,
        collection=collection,
        status=JobStatus(row.status),
        documents_total=row.documents_total,
        documents_done=documents_done,
        chunks_total=chunks_total,
        chunks_done=chunks_done,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        kind=JobKind(row.kind),
        documents_unchanged=row.documents_unchanged,
        parts=row.parts,
        parent_id=row.parent_id,
    )


# --------------------------------------------------------------------------- error seam


@contextmanager
def _translate_errors() -> Iterator[None]:
    """Turn SQLAlchemy's errors into retrieval.errors, chained."""
    try:
        yield
    except (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError) as exc:
        cause = getattr(exc, "orig", None) or exc
        detail = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        # The cause names hosts, ports and users: for the operator's log, not for clients.
        logger.warning("catalog database unavailable: %s", detail)
        raise Unavailable(
            "catalog database unavailable: check that it is running and reachable, then retry"
        ) from exc
    except IntegrityError as exc:
        raise Conflict(
            "the catalog was changed by a concurrent request; retry the operation"
        ) from exc


# --------------------------------------------------------------------------- engine


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, and transactions that SQLAlchemy (not sqlite3) begins.

    sqlite3's legacy mode begins a transaction lazily at the first write, so a read-then-write
    transaction can fail at once with "database is locked" when another writer got in between
    (the busy timeout does not apply to that upgrade). Write transactions therefore begin with
    BEGIN IMMEDIATE and wait for the write lock up front; reads begin a plain deferred BEGIN.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_TIMEOUT_S * 1000)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def create_catalog_engine(url: str) -> Engine:
    """An engine for the catalog URL, set up for the threads of one service process."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": _SQLITE_BUSY_TIMEOUT_S},
        )
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(importlib.resources.files("migrations")))
    return config


# --------------------------------------------------------------------------- catalog


class Catalog:
    """Collections, documents and jobs. Thread-safe; each method is one transaction."""

    def __init__(self, *, engine: Engine, job_part_documents: int | None = None) -> None:
        """`job_part_documents`: an ingest of more documents is split into part jobs of at
        most this many (None: never), which separate workers can run at once."""
        if job_part_documents is not None and job_part_documents < 1:
            raise ValueError(f"job_part_documents must be at least 1, got {job_part_documents}")
        if engine.dialect.name not in _SUPPORTED_DIALECTS:
            raise ConfigurationError(
                f"the catalog runs on SQLite or PostgreSQL, not {engine.dialect.name}; "
                "set SEMSEARCH_DATABASE_URL to a postgresql+psycopg:// URL or unset it"
            )
        self._engine = engine
        self._job_part_documents = job_part_documents
        self._read = sessionmaker(engine)
        self._write = sessionmaker(engine.execution_options(**{_WRITE_OPTION: True}))
        self._counts_generations: dict[str, int] = {}
        """Per collection, the writes this object ended that changed its documents' word-piece
        counts: what invalidates its entry in `_language_counts`."""
        self._language_counts: dict[str, tuple[int, float, tuple[int, int]]] = {}
        self._memo_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, job_part_documents: int | None = None) -> Catalog:
        return cls(engine=create_catalog_engine(url), job_part_documents=job_part_documents)

    @property
    def engine(self) -> Engine:
        """The engine, for schema checks in tests and tooling; the service never needs it."""
        return self._engine

    def upgrade_schema(self) -> None:
        """Bring the schema to the newest migration (Alembic `upgrade head`); idempotent."""
        config = _alembic_config()
        engine = self._engine.execution_options(**{_WRITE_OPTION: True})
        with _translate_errors(), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Replicas starting together: one migrates, the others wait, then find it done.
                connection.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _session(self, *, write: bool, counts_of: str | None = None) -> Iterator[Session]:
        """One transaction. `counts_of` names the collection whose documents' word-piece
        counts the write may change: its memoised language counts are dropped once it ends."""
        factory = self._write if write else self._read
        try:
            with _translate_errors(), factory.begin() as session:
                yield session
        finally:
            if counts_of is not None:
                with self._memo_lock:
                    generation = self._counts_generations.get(counts_of, 0)
                    self._counts_generations[counts_of] = generation + 1

    # ----------------------------------------------------------------------- collections

    def create_collection(self, spec: CollectionSpec) -> CollectionRecord:
        taken = Conflict(f"collection {spec.name!r} already exists")
        with self._session(write=True) as session:
            if _find_collection(session, spec.name) is not None:
                raise taken
            row = CollectionRow(
                name=spec.name,
                threshold=spec.threshold,
                top_k=spec.top_k,
                term_map=dict(spec.term_map),
                chunk_max_tokens=spec.chunk_max_tokens,
                chunk_overlap_sentences=spec.chunk_overlap_sentences,
                model=spec.model,
                dimension=spec.dimension,
                mode=spec.mode.value,
                filterable=dict(spec.filterable),
                store_name=new_store_name(spec.name),
                generation=0,
            )
            session.add(row)
            try:
                session.flush()
            except IntegrityError as exc:
                raise taken from exc
            return _collection_record(row)

    def get_collection(self, name: str) -> CollectionRecord:
        """Read with a Core query, no ORM session: every search asks, and the session's
        bookkeeping cost twice the query (0.8 against 0.35 ms on SQLite)."""
        table = CollectionRow.__table__
        with _translate_errors(), self._engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.name == name)).one_or_none()
        if row is None:
            raise _missing_collection(name)
        return _collection_record(row)

    def list_collections(self) -> list[CollectionRecord]:
        with self._session(write=False) as session:
            rows = session.scalars(select(CollectionRow).order_by(CollectionRow.name))
            return [_collection_record(row) for row in rows]

    def update_collection(
        self,
        name: str,
        *,
        threshold: float | None = None,
        top_k: int | None = None,
        mode: CollectionMode | None = None,
        filterable: Mapping[str, str] | None = None,
    ) -> CollectionRecord:
        """Change the given settings; those left as None keep their value. What shapes the
        vectors (model, term map, chunking) changes through a re-index only."""
        with self._session(write=True) as session:
            row = _require_collection(session, name)
            if mode is not None:
                row.mode = mode.value
            if filterable is not None:
                row.filterable = dict(filterable)
            if threshold is not None:
                row.threshold = threshold
            if top_k is not None:
                row.top_k = top_k
            session.flush()
            return _collection_record(row)

    def store_calibration(
        self,
        name: str,
        calibration: Mapping[str, Any],
        *,
        threshold: float | None = None,
        mode: CollectionMode | None = None,
    ) -> CollectionRecord:
        """Keep a calibration's report; with `threshold` (and `mode`), apply it too."""
        with self._session(write=True) as session:
            row = _require_collection(session, name, lock=True)
            row.calibration = dict(calibration)
            if threshold is not None:
                row.threshold = threshold
            if mode is not None:
                row.mode = mode.value
            session.flush()
            return _collection_record(row)

    def delete_collection(self, name: str) -> None:
        """Delete the collection; the database cascades to its documents and jobs."""
        with self._session(write=True, counts_of=name) as session:
            session.delete(_require_collection(session, name))

    def start_reindex(self, name: str, settings: IndexSettings) -> tuple[Reindex, JobRecord]:
        """Open the next generation of the collection's vectors and queue the job that fills it.

        The collection keeps serving from its current store collection until
        `complete_reindex`. One re-index at a time: Conflict while one is under way. More
        documents than `job_part_documents` make a job of parts, each a share of the
        documents as they are now (`runnable_job_ids` lists what to queue).
        """
        with self._session(write=True) as session:
            row = _require_collection(session, name, lock=True)
            if row.reindex is not None:
                raise Conflict(
                    f"collection {name!r} is being re-indexed (job {row.reindex['job_id']}); "
                    "change its model, term map or chunking again once that job has finished"
                )
            document_ids = list(
                session.scalars(
                    select(DocumentRow.document_id)
                    .where(DocumentRow.collection_id == row.id)
                    .order_by(DocumentRow.document_id)
                )
            )
            job = _new_job(row.id, JobKind.REINDEX, document_ids)
            session.add(job)
            session.flush()
            self._split_into_parts(
                session, job, document_ids, lambda share: _new_job(row.id, JobKind.REINDEX, share)
            )
            row.generation += 1
            reindex = Reindex(job_id=job.id, store_name=new_store_name(row.name), settings=settings)
            row.reindex = {
                "job_id": reindex.job_id,
                "store_name": reindex.store_name,
                "settings": settings.to_json(),
            }
            session.flush()
            return reindex, _job_record(row.name, job, session)

    def document_hashes(self, name: str) -> dict[str, str]:
        """Every document of the collection: id -> content hash."""
        with self._session(write=False) as session:
            row = _require_collection(session, name)
            rows = session.execute(
                select(DocumentRow.document_id, DocumentRow.content_hash).where(
                    DocumentRow.collection_id == row.id
                )
            )
            return {document_id: content for document_id, content in rows}

    def record_reindexed(self, job_id: str, written: Mapping[str, IndexedDocument]) -> None:
        """Record what the re-index of job `job_id` wrote for documents (document id ->
        record), replacing what it wrote for earlier texts of them."""
        if not written:
            return
        with self._session(write=True) as session:
            session.execute(
                _upsert_reindexed(session),
                [
                    {
                        "job_id": job_id,
                        "document_id": document_id,
                        "content_hash": record.content_hash,
                        "chunk_count": record.chunk_count,
                        "word_pieces": record.word_pieces,
                        "unknown_word_pieces": record.unknown_word_pieces,
                    }
                    for document_id, record in written.items()
                ],
            )

    def reindexed_documents(self, job_id: str) -> dict[str, IndexedDocument]:
        """What the re-index of job `job_id` has written so far: document id -> record."""
        with self._session(write=False) as session:
            return _reindexed_documents(session, job_id)

    def forget_reindexed(self, job_id: str, document_ids: Sequence[str]) -> None:
        """Drop the records of documents deleted since the re-index wrote them."""
        with self._session(write=True) as session:
            session.execute(
                delete(ReindexedDocumentRow).where(
                    ReindexedDocumentRow.job_id == job_id,
                    ReindexedDocumentRow.document_id.in_(document_ids),
                )
            )

    def finish_reindex_part(self, part_id: str) -> bool:
        """Mark a re-index's part succeeded, unless it is the last of its parts unfinished:
        then leave it running and return True, and the caller swaps the re-index in (one part
        does, whichever order they end in) and finishes the part after."""
        with self._session(write=True) as session:
            part, _ = _require_job(session, part_id, lock=True)
            _locked_parent(session, part)
            others_unfinished = session.scalar(
                select(func.count()).where(
                    JobRow.parent_id == part.parent_id,
                    JobRow.id != part.id,
                    JobRow.status.in_(_UNFINISHED),
                )
            )
            if not others_unfinished:
                return True
            part.status = JobStatus.SUCCEEDED.value
            part.finished_at = utc_now()
            return False

    def complete_reindex(self, name: str, job_id: str) -> str | None:
        """Swap the re-indexed vectors in, if they hold exactly the documents stored now.

        Compare-and-swap, in one transaction: when what the re-index of job `job_id` recorded
        (`record_reindexed`) matches every document's current content, the collection takes
        the re-index's settings and store collection, and its documents the counts of the new
        model; the old store collection's name is returned for the caller to drop. When a
        document was added, changed or deleted meanwhile, nothing changes and None is
        returned: index the difference and call again. NotFound when the re-index is no
        longer this job's.
        """
        with self._session(write=True, counts_of=name) as session:
            row = _require_collection(session, name, lock=True)
            reindex = _reindex(row.reindex)
            if reindex is None or reindex.job_id != job_id:
                raise NotFound(f"collection {name!r} has no re-index by job {job_id!r}")
            indexed = _reindexed_documents(session, job_id)
            rows = {
                document.document_id: document
                for document in session.scalars(
                    select(DocumentRow)
                    .where(DocumentRow.collection_id == row.id)
                    .order_by(DocumentRow.document_id)
                    .with_for_update()
                )
            }
            if rows.keys() != indexed.keys() or any(
                document.content_hash != indexed[document_id].content_hash
                for document_id, document in rows.items()
            ):
                return None
            for document_id, document in rows.items():
                _record_written(document, indexed[document_id])
            settings = reindex.settings
            retired = row.store_name
            row.model = settings.model
            row.dimension = settings.dimension
            row.term_map = dict(settings.term_map)
            row.chunk_max_tokens = settings.chunk_max_tokens
            row.chunk_overlap_sentences = settings.chunk_overlap_sentences
            row.store_name = reindex.store_name
            row.reindex = None
            _forget_reindex(session, job_id)
            return retired

    def abandon_reindex(self, name: str, job_id: str) -> str | None:
        """Give up the job's re-index: the store collection it was filling, to drop, or None."""
        with self._session(write=True) as session:
            row = _find_collection(session, name)
            reindex = _reindex(row.reindex) if row is not None else None
            if row is None or reindex is None or reindex.job_id != job_id:
                return None
            row.reindex = None
            _forget_reindex(session, job_id)
            return reindex.store_name

    def document_count(self, name: str) -> int:
        with self._session(write=False) as session:
            row = _require_collection(session, name)
            count = session.scalar(select(func.count()).where(DocumentRow.collection_id == row.id))
            return count or 0

    # ----------------------------------------------------------------------- documents

    def stage_documents(self, collection: str, documents: Sequence[DocumentInput]) -> JobRecord:
        """Upsert the documents and queue one job that ingests them, in one transaction.

        A document whose new content hash equals its indexed hash stays 'indexed' (its chunks
        are already in the vector store); every other one becomes 'pending'. More documents
        than `job_part_documents` make a job of parts, each a queued job of its own
        (`runnable_job_ids` lists what to queue).
        """
        seen: set[str] = set()
        for doc in documents:
            if doc.id in seen:
                raise InvalidInput(f"document id {doc.id!r} appears more than once in one request")
            seen.add(doc.id)
        hashes = {doc.id: content_hash(doc) for doc in documents}

        # Every stager inserts and locks rows in id order, so two concurrent requests that
        # share documents wait for each other instead of deadlocking.
        ordered = sorted(documents, key=lambda d: d.id)
        with self._session(write=True) as session:
            coll = _require_collection(session, collection)
            if ordered:
                now = utc_now()
                session.execute(
                    _insert_skipping_existing_documents(session),
                    [
                        {
                            "collection_id": coll.id,
                            "document_id": doc.id,
                            "text": doc.text,
                            "title": doc.title,
                            "source": doc.source,
                            "doc_metadata": dict(doc.metadata),
                            "content_hash": hashes[doc.id],
                            "status": DocumentStatus.PENDING.value,
                            "chunk_count": 0,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for doc in ordered
                    ],
                )
            rows = _locked_documents(session, coll, [doc.id for doc in ordered])

            for doc in ordered:
                new_hash = hashes[doc.id]
                row = rows[doc.id]
                row.text = doc.text
                row.title = doc.title
                row.source = doc.source
                row.doc_metadata = dict(doc.metadata)
                row.content_hash = new_hash
                row.error = None
                row.status = (
                    DocumentStatus.INDEXED
                    if row.indexed_hash == new_hash
                    else DocumentStatus.PENDING
                ).value

            unchanged_ids = {
                doc.id for doc in ordered if rows[doc.id].indexed_hash == hashes[doc.id]
            }
            document_ids = [doc.id for doc in documents]
            job = _new_ingest_job(coll.id, document_ids, unchanged_ids)
            session.add(job)
            session.flush()  # the mappers have no relationships, so order the inserts here
            if not self._split_into_parts(
                session,
                job,
                document_ids,
                lambda share: _new_ingest_job(coll.id, share, unchanged_ids),
            ):
                _add_job_documents(session, job.id, document_ids)
            session.flush()
            return _job_record(coll.name, job, session)

    def _split_into_parts(
        self,
        session: Session,
        job: JobRow,
        document_ids: Sequence[str],
        new_part: Callable[[Sequence[str]], JobRow],
    ) -> bool:
        """Give `job` part jobs (made by `new_part`) of at most `job_part_documents` of the
        documents each, when it has more; whether it was split."""
        part_size = self._job_part_documents
        if part_size is None or len(document_ids) <= part_size:
            return False
        shares = [
            document_ids[start : start + part_size]
            for start in range(0, len(document_ids), part_size)
        ]
        job.parts = len(shares)
        for index, share in enumerate(shares):
            part = new_part(share)
            part.parent_id = job.id
            # A microsecond apart, after their job: parts list in the order they hold the
            # documents (created_at orders jobs).
            part.created_at = job.created_at + timedelta(microseconds=index + 1)
            session.add(part)
            session.flush()
            _add_job_documents(session, part.id, share)
        return True

    def get_document(self, collection: str, document_id: str) -> DocumentRecord:
        with self._session(write=False) as session:
            coll = _require_collection(session, collection)
            return _document_record(coll.name, _require_document(session, coll, document_id))

    def get_documents(self, collection: str, document_ids: Sequence[str]) -> list[DocumentRecord]:
        """The documents of these ids that exist, in the order given (each once), in batches."""
        wanted = list(dict.fromkeys(document_ids))
        found: dict[str, DocumentRecord] = {}
        with self._session(write=False) as session:
            coll = _require_collection(session, collection)
            for start in range(0, len(wanted), _IN_CLAUSE_BATCH):
                rows = session.scalars(
                    select(DocumentRow).where(
                        DocumentRow.collection_id == coll.id,
                        DocumentRow.document_id.in_(wanted[start : start + _IN_CLAUSE_BATCH]),
                    )
                )
                found.update((row.document_id, _document_record(coll.name, row)) for row in rows)
        return [found[document_id] for document_id in wanted if document_id in found]

    def list_documents(
        self, collection: str, *, offset: int, limit: int
    ) -> tuple[list[DocumentRecord], int]:
        """A page of the collection's documents ordered by id, and the total count."""
        if offset < 0 or limit < 1:
            raise InvalidInput(f"offset must be >= 0 and limit >= 1, got {offset} and {limit}")
        with self._session(write=False) as session:
            coll = _require_collection(session, collection)
            total = session.scalar(select(func.count()).where(DocumentRow.collection_id == coll.id))
            rows = session.scalars(
                select(DocumentRow)
                .where(DocumentRow.collection_id == coll.id)
                .order_by(DocumentRow.document_id)
                .offset(offset)
                .limit(limit)
            )
            return [_document_record(coll.name, row) for row in rows], total or 0

    def delete_document(self, collection: str, document_id: str) -> None:
        with self._session(write=True, counts_of=collection) as session:
            coll = _require_collection(session, collection)
            session.delete(_require_document(session, coll, document_id, lock=True))

    def language_counts(self, name: str) -> tuple[int, int]:
        """(word pieces, unknown word pieces) over the collection's indexed documents.

        Asked on every search, and a SUM over every document (half a search's time at 10^5
        chunks), so the answer is reused until this catalog changes the collection's counts
        (other collections' writes, jobs and keys leave it be) or it is
        LANGUAGE_COUNTS_MAX_AGE_S old.
        """
        with self._memo_lock:
            generation = self._counts_generations.get(name, 0)
            memo = self._language_counts.get(name)
        now = time.monotonic()
        if memo is not None and memo[0] == generation and now - memo[1] < LANGUAGE_COUNTS_MAX_AGE_S:
            return memo[2]
        with self._session(write=False) as session:
            row = _require_collection(session, name)
            total, unknown = session.execute(
                select(
                    func.coalesce(func.sum(DocumentRow.word_pieces), 0),
                    func.coalesce(func.sum(DocumentRow.unknown_word_pieces), 0),
                ).where(DocumentRow.collection_id == row.id)
            ).one()
        counts = (int(total), int(unknown))
        with self._memo_lock:
            self._language_counts[name] = (generation, now, counts)
        return counts

    def mark_documents_indexed(
        self,
        collection: str,
        written: Mapping[str, IndexedDocument],
        *,
        store_name: str | None = None,
    ) -> list[str]:
        """Record, in one transaction, that the chunks of each document's content named in
        `written` (document id -> what was written) are in the vector store; return the ids
        of those deleted meanwhile, whose points the caller drops.

        A document re-staged with other content meanwhile stays 'pending': the newer job will
        index it. With `store_name`, nothing is recorded unless that store collection still
        serves the collection: a re-index that completed meanwhile has recorded these
        documents' content with the counts of its own model.
        """
        if not written:
            return []
        with self._session(write=True, counts_of=collection) as session:
            coll = _require_collection(session, collection, lock=store_name is not None)
            if store_name is not None and coll.store_name != store_name:
                return []
            rows = _locked_documents(session, coll, list(written))
            for document_id, row in rows.items():
                _record_written(row, written[document_id])
            return [document_id for document_id in written if document_id not in rows]

    def mark_document_failed(self, collection: str, document_id: str, *, error: str) -> None:
        with self._session(write=True) as session:
            coll = _require_collection(session, collection)
            row = _require_document(session, coll, document_id, lock=True)
            row.status = DocumentStatus.FAILED.value
            row.error = _truncate(error)

    # ----------------------------------------------------------------------- reconciling

    def index_states(self, collection: str) -> dict[str, IndexState]:
        """Every document of the collection: id -> what the vector store should hold of it."""
        with self._session(write=False) as session:
            coll = _require_collection(session, collection)
            rows = session.execute(
                select(
                    DocumentRow.document_id,
                    DocumentRow.status,
                    DocumentRow.indexed_hash,
                    DocumentRow.chunk_count,
                ).where(DocumentRow.collection_id == coll.id)
            )
            return {
                document_id: IndexState(DocumentStatus(status), indexed_hash, chunk_count)
                for document_id, status, indexed_hash, chunk_count in rows
            }

    def while_unchanged(
        self,
        collection: str,
        expected: Mapping[str, IndexState | None],
        action: Callable[[list[str]], None],
    ) -> list[str]:
        """Run `action` on the ids of the documents still as `expected` (None: absent); those ids.

        Their rows stay locked while `action` runs, so that no request re-stages one of them
        meanwhile: what `action` does to their points agrees with the catalog when it returns.
        An absent document has no row to lock: on SQLite the write transaction keeps any
        insert out meanwhile, on PostgreSQL its absence is only checked.
        """
        with self._session(write=True) as session:
            coll = _require_collection(session, collection)
            rows = _locked_documents(session, coll, list(expected))
            unchanged = [
                document_id
                for document_id in sorted(expected)
                if _index_state(rows.get(document_id)) == expected[document_id]
            ]
            if unchanged:
                action(unchanged)
            return unchanged

    def requeue_documents(
        self, collection: str, expected: Mapping[str, IndexState]
    ) -> JobRecord | None:
        """Queue one ingest job that indexes again the documents still as `expected`.

        Their content is indexed but their points are not all in the store, and a job skips a
        document whose indexed hash is its content hash: the indexed hash is therefore
        cleared (status 'pending'), so that the job embeds them. None when no document is
        still as expected; `undo_requeue` when the job cannot be queued.
        """
        with self._session(write=True) as session:
            coll = _require_collection(session, collection)
            rows = _locked_documents(session, coll, list(expected))
            requeued = [
                rows[document_id]
                for document_id in sorted(expected)
                if _index_state(rows.get(document_id)) == expected[document_id]
            ]
            if not requeued:
                return None
            for row in requeued:
                row.indexed_hash = None
                row.status = DocumentStatus.PENDING.value
                row.error = None
            job = JobRow(
                id=str(uuid.uuid4()),
                collection_id=coll.id,
                status=JobStatus.QUEUED.value,
                documents_total=len(requeued),
                documents_done=0,
                documents_unchanged=0,
                chunks_total=0,
                chunks_done=0,
            )
            session.add(job)
            session.flush()
            session.add_all(
                JobDocumentRow(job_id=job.id, position=position, document_id=row.document_id)
                for position, row in enumerate(requeued)
            )
            session.flush()
            return _job_record(coll.name, job, session)

    def undo_requeue(self, collection: str, expected: Mapping[str, IndexState]) -> None:
        """Give documents that `requeue_documents` cleared their indexed hash back (their job
        could not be queued), unless a job recorded another one meanwhile."""
        with self._session(write=True) as session:
            coll = _require_collection(session, collection)
            for document_id, row in _locked_documents(session, coll, list(expected)).items():
                if row.indexed_hash is None and row.status == DocumentStatus.PENDING.value:
                    row.indexed_hash = expected[document_id].indexed_hash
                    row.status = (
                        DocumentStatus.INDEXED
                        if row.content_hash == row.indexed_hash
                        else DocumentStatus.PENDING
                    ).value

    def document_ids_with_prefix(self, collection: str, prefix: str) -> list[str]:
        """The ids of the collection's documents that start with `prefix`, in id order.

        Compared exactly (case, '%' and '_' as written), not with LIKE.
        """
        with self._session(write=False) as session:
            coll = _require_collection(session, collection)
            ids = session.scalars(
                select(DocumentRow.document_id)
                .where(
                    DocumentRow.collection_id == coll.id,
                    func.substr(DocumentRow.document_id, 1, len(prefix)) == prefix,
                )
                .order_by(DocumentRow.document_id)
            )
            return list(ids)

    def delete_documents(self, collection: str, document_ids: Sequence[str]) -> int:
        """Delete these documents (ids that do not exist are skipped); how many were."""
        wanted = sorted(set(document_ids))
        deleted = 0
        with self._session(write=True, counts_of=collection) as session:
            coll = _require_collection(session, collection)
            for start in range(0, len(wanted), _IN_CLAUSE_BATCH):
                gone = session.scalars(
                    delete(DocumentRow)
                    .where(
                        DocumentRow.collection_id == coll.id,
                        DocumentRow.document_id.in_(wanted[start : start + _IN_CLAUSE_BATCH]),
                    )
                    .returning(DocumentRow.document_id)
                )
                deleted += len(gone.all())
        return deleted

    # ----------------------------------------------------------------------- jobs

    def get_job(self, job_id: str) -> JobRecord:
        with self._session(write=False) as session:
            job, collection = _require_job(session, job_id)
            return _job_record(collection, job, session)

    def list_jobs(self, collection: str, *, limit: int) -> list[JobRecord]:
        """The collection's most recent jobs (ingest and re-index), newest first; parts are
        reported within the job they make up."""
        if limit < 1:
            raise InvalidInput(f"limit must be >= 1, got {limit}")
        with self._session(write=False) as session:
            coll = _require_collection(session, collection)
            rows = session.scalars(
                select(JobRow)
                .where(JobRow.collection_id == coll.id, JobRow.parent_id.is_(None))
                .order_by(JobRow.created_at.desc(), JobRow.id.desc())
                .limit(limit)
            )
            return [_job_record(coll.name, row, session) for row in rows]

    def job_document_ids(self, job_id: str) -> list[str]:
        """The ids of the documents the job ingests, in the order they were staged."""
        with self._session(write=False) as session:
            _require_job(session, job_id)
            ids = session.scalars(
                select(JobDocumentRow.document_id)
                .where(JobDocumentRow.job_id == job_id)
                .order_by(JobDocumentRow.position)
            )
            return list(ids)

    def start_job(self, job_id: str, *, chunks_total: int) -> None:
        """Mark the job running (and the job it is a part of, at its first part). A restarted
        job (recovery) starts its progress from zero."""
        with self._session(write=True) as session:
            job, _ = _require_job(session, job_id, lock=True)
            now = utc_now()
            job.status = JobStatus.RUNNING.value
            job.chunks_total = chunks_total
            job.documents_done = 0
            job.chunks_done = 0
            job.error = None
            job.started_at = job.heartbeat_at = now
            job.finished_at = None
            if job.parent_id is not None:
                session.execute(
                    update(JobRow)
                    .where(JobRow.id == job.parent_id, JobRow.status == JobStatus.QUEUED.value)
                    .values(status=JobStatus.RUNNING.value, started_at=now)
                )

    def record_job_progress(
        self,
        job_id: str,
        *,
        documents_done: int,
        chunks_done: int,
        chunks_total: int | None = None,
    ) -> None:
        """Progress so far; `chunks_total` when the job learns of more chunks as it goes."""
        with self._session(write=True) as session:
            job, _ = _require_job(session, job_id, lock=True)
            job.documents_done = documents_done
            job.chunks_done = chunks_done
            job.heartbeat_at = utc_now()
            if chunks_total is not None:
                job.chunks_total = chunks_total

    def finish_job(self, job_id: str) -> None:
        """Mark the job succeeded; the last part of a job ends that job too."""
        with self._session(write=True) as session:
            job, _ = _require_job(session, job_id, lock=True)
            job.status = JobStatus.SUCCEEDED.value
            job.finished_at = utc_now()
            _settle_parent(session, job)

    def fail_job(self, job_id: str, *, error: str) -> None:
        """Mark the job failed; the last part of a job ends that job too."""
        with self._session(write=True) as session:
            job, _ = _require_job(session, job_id, lock=True)
            job.status = JobStatus.FAILED.value
            job.error = _truncate(error)
            job.finished_at = utc_now()
            _settle_parent(session, job)

    def runnable_job_ids(self, job: JobRecord) -> list[str]:
        """What to queue for a job just staged: its parts in order, or the job itself."""
        if not job.parts:
            return [job.id]
        with self._session(write=False) as session:
            ids = session.scalars(
                select(JobRow.id)
                .where(JobRow.parent_id == job.id)
                .order_by(JobRow.created_at, JobRow.id)
            )
            return list(ids)

    def queued_job_ids(self, *, before: datetime) -> list[str]:
        """Jobs still queued that were created before `before`, oldest first."""
        with self._session(write=False) as session:
            ids = session.scalars(
                select(JobRow.id)
                .where(
                    JobRow.status == JobStatus.QUEUED.value,
                    JobRow.created_at < before,
                    JobRow.parts == 0,  # a job of parts runs nothing itself
                )
                .order_by(JobRow.created_at, JobRow.id)
            )
            return list(ids)

    def claim_stalled_job_ids(self, *, before: datetime) -> list[str]:
        """Running jobs whose last heartbeat is older than `before`, oldest first; their
        heartbeat is set to now, so that one sweep claims them and the next waits again."""
        with self._session(write=True) as session:
            jobs = session.scalars(
                select(JobRow)
                .where(
                    JobRow.status == JobStatus.RUNNING.value,
                    JobRow.parts == 0,  # a job of parts runs nothing itself: it has no beat
                    # Jobs started before heartbeats were recorded have only a start.
                    func.coalesce(JobRow.heartbeat_at, JobRow.started_at) < before,
                )
                .order_by(JobRow.id)
                .with_for_update()
            ).all()
            now = utc_now()
            for job in jobs:
                job.heartbeat_at = now
            return [job.id for job in jobs]

    def unfinished_job_count(self) -> int:
        """Jobs queued or running that run themselves (parts, not the jobs they make up):
        one COUNT, for a metrics scrape."""
        with self._session(write=False) as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(JobRow)
                    .where(JobRow.status.in_(_UNFINISHED), JobRow.parts == 0)
                )
                or 0
            )

    def unfinished_job_ids(self) -> list[str]:
        """Queued or running jobs that run themselves, oldest first: what to resume after a
        restart (a job of parts ends with its parts)."""
        with self._session(write=False) as session:
            ids = session.scalars(
                select(JobRow.id)
                .where(JobRow.status.in_(_UNFINISHED), JobRow.parts == 0)
                .order_by(JobRow.created_at, JobRow.id)
            )
            return list(ids)

    # ----------------------------------------------------------------------- API keys

    def add_api_key(self, issued: IssuedKey) -> ApiKeyRecord:
        record = issued.record
        with self._session(write=True) as session:
            session.add(
                ApiKeyRow(
                    key_id=record.key_id,
                    name=record.name,
                    token_hash=issued.token_hash,
                    scopes=sorted(scope.value for scope in record.scopes),
                    collections=None if record.collections is None else list(record.collections),
                    created_at=record.created_at,
                )
            )
        return record

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every key ever created, revoked ones included, oldest first."""
        with self._session(write=False) as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))
            return [_api_key_record(row) for row in rows]

    def find_api_key(self, token_hash: str) -> ApiKeyRecord | None:
        with self._session(write=False) as session:
            row = session.scalars(
                select(ApiKeyRow).where(ApiKeyRow.token_hash == token_hash)
            ).one_or_none()
            return None if row is None else _api_key_record(row)

    def any_api_key_created(self) -> bool:
        """Whether a key was ever created: from then on every request needs one (revoking
        every key locks the service rather than opening it)."""
        with self._session(write=False) as session:
            return session.scalars(select(ApiKeyRow.key_id).limit(1)).first() is not None

    def revoke_api_key(self, key_id: str) -> ApiKeyRecord:
        with self._session(write=True) as session:
            row = session.get(ApiKeyRow, key_id, with_for_update=True)
            if row is None:
                raise NotFound(f"API key {key_id!r} does not exist")
            if row.revoked_at is None:
                row.revoked_at = utc_now()
            return _api_key_record(row)


def _dialect_insert(session: Session, table: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """INSERT INTO `table`, in the session's dialect (for its ON CONFLICT clauses)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _insert_skipping_existing_documents(session: Session) -> Executable:
    """INSERT INTO documents ... ON CONFLICT DO NOTHING, in the session's dialect."""
    return _dialect_insert(session, DocumentRow).on_conflict_do_nothing(
        index_elements=["collection_id", "document_id"]
    )


def _upsert_reindexed(session: Session) -> Executable:
    """INSERT INTO reindexed_documents ... ON CONFLICT DO UPDATE, in the session's dialect."""
    insert = _dialect_insert(session, ReindexedDocumentRow)
    return insert.on_conflict_do_update(
        index_elements=["job_id", "document_id"],
        set_={
            column: insert.excluded[column]
            for column in ("content_hash", "chunk_count", "word_pieces", "unknown_word_pieces")
        },
    )


def _reindexed_documents(session: Session, job_id: str) -> dict[str, IndexedDocument]:
    rows = session.scalars(
        select(ReindexedDocumentRow).where(ReindexedDocumentRow.job_id == job_id)
    )
    return {
        row.document_id: IndexedDocument(
            content_hash=row.content_hash,
            chunk_count=row.chunk_count,
            word_pieces=row.word_pieces,
            unknown_word_pieces=row.unknown_word_pieces,
        )
        for row in rows
    }


def _forget_reindex(session: Session, job_id: str) -> None:
    """A re-index swapped in or given up: its records have served."""
    session.execute(delete(ReindexedDocumentRow).where(ReindexedDocumentRow.job_id == job_id))


def _find_collection(session: Session, name: str, *, lock: bool = False) -> CollectionRow | None:
    query = select(CollectionRow).where(CollectionRow.name == name)
    return session.scalars(query.with_for_update() if lock else query).one_or_none()


def _require_collection(session: Session, name: str, *, lock: bool = False) -> CollectionRow:
    row = _find_collection(session, name, lock=lock)
    if row is None:
        raise _missing_collection(name)
    return row


def _missing_collection(name: str) -> NotFound:
    return NotFound(f"collection {name!r} does not exist")


def _require_document(
    session: Session, coll: CollectionRow, document_id: str, *, lock: bool = False
) -> DocumentRow:
    row = session.get(DocumentRow, (coll.id, document_id), with_for_update=lock)
    if row is None:
        raise NotFound(f"document {document_id!r} does not exist in collection {coll.name!r}")
    return row


def _record_written(row: DocumentRow, written: IndexedDocument) -> None:
    """Set what the vector store holds of the document: indexed when that is its current
    content, pending when it was re-staged with other content meanwhile (the newer job will
    index it)."""
    row.indexed_hash = written.content_hash
    row.chunk_count = written.chunk_count
    row.word_pieces = written.word_pieces
    row.unknown_word_pieces = written.unknown_word_pieces
    row.error = None
    row.status = (
        DocumentStatus.INDEXED
        if row.content_hash == written.content_hash
        else DocumentStatus.PENDING
    ).value


def _locked_documents(
    session: Session, coll: CollectionRow, document_ids: Sequence[str]
) -> dict[str, DocumentRow]:
    """The documents of these ids that exist, their rows locked in id order as stagers lock
    them (so that two transactions wait for each other instead of deadlocking)."""
    ids = sorted(document_ids)
    rows: dict[str, DocumentRow] = {}
    for start in range(0, len(ids), _IN_CLAUSE_BATCH):
        found = session.scalars(
            select(DocumentRow)
            .where(
                DocumentRow.collection_id == coll.id,
                DocumentRow.document_id.in_(ids[start : start + _IN_CLAUSE_BATCH]),
            )
            .order_by(DocumentRow.document_id)
            .with_for_update()
        )
        rows.update((row.document_id, row) for row in found)
    return rows


def _index_state(row: DocumentRow | None) -> IndexState | None:
    if row is None:
        return None
    return IndexState(DocumentStatus(row.status), row.indexed_hash, row.chunk_count)


def _new_job(collection_id: int, kind: JobKind, document_ids: Sequence[str]) -> JobRow:
    return JobRow(
        id=str(uuid.uuid4()),
        collection_id=collection_id,
        kind=kind.value,
        status=JobStatus.QUEUED.value,
        created_at=utc_now(),
        documents_total=len(document_ids),
        documents_done=0,
        documents_unchanged=0,
        chunks_total=0,
        chunks_done=0,
        parts=0,
    )


def _new_ingest_job(
    collection_id: int, document_ids: Sequence[str], unchanged_ids: set[str]
) -> JobRow:
    job = _new_job(collection_id, JobKind.INGEST, document_ids)
    job.documents_unchanged = sum(document_id in unchanged_ids for document_id in document_ids)
    return job


def _add_job_documents(session: Session, job_id: str, document_ids: Sequence[str]) -> None:
    session.add_all(
        JobDocumentRow(job_id=job_id, position=position, document_id=document_id)
        for position, document_id in enumerate(document_ids)
    )


def _locked_parent(session: Session, part: JobRow) -> JobRow | None:
    """The job `part` belongs to, locked (after `part`: every path locks a part first)."""
    if part.parent_id is None:
        return None
    return session.scalars(
        select(JobRow).where(JobRow.id == part.parent_id).with_for_update()
    ).one_or_none()


def _settle_parent(session: Session, part: JobRow) -> None:
    """End the job `part` belongs to once none of its parts is unfinished: failed with its
    failed parts' errors if any failed, succeeded otherwise. The caller holds `part`'s lock;
    the parent's is taken after it (every path locks a part before its parent)."""
    parent = _locked_parent(session, part)
    if parent is None or parent.status not in _UNFINISHED:
        return
    siblings = session.execute(
        select(JobRow.status, JobRow.error)
        .where(JobRow.parent_id == parent.id)
        .order_by(JobRow.created_at, JobRow.id)
    ).all()
    if any(status in _UNFINISHED for status, _ in siblings):
        return
    errors = [error or "failed" for status, error in siblings if status == JobStatus.FAILED.value]
    parent.status = (JobStatus.FAILED if errors else JobStatus.SUCCEEDED).value
    parent.error = (
        _truncate(f"{len(errors)} of {len(siblings)} parts failed: " + "; ".join(errors))
        if errors
        else None
    )
    parent.finished_at = utc_now()


def _require_job(session: Session, job_id: str, *, lock: bool = False) -> tuple[JobRow, str]:
    query = (
        select(JobRow, CollectionRow.name)
        .join(CollectionRow, CollectionRow.id == JobRow.collection_id)
        .where(JobRow.id == job_id)
    )
    if lock:
        query = query.with_for_update(of=JobRow)
    found = session.execute(query).one_or_none()
    if found is None:
        raise NotFound(f"job {job_id!r} does not exist")
    return found[0], found[1]
