"""The catalog on a real SQLite file and on the local PostgreSQL (one fresh schema per test)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event

from retrieval.catalog import (
    MAX_ERROR_CHARS,
    Base,
    Catalog,
    CollectionSpec,
    DocumentInput,
    DocumentStatus,
    IndexedDocument,
    IndexSettings,
    JobKind,
    JobStatus,
    content_hash,
    utc_now,
)
from retrieval.errors import Conflict, InvalidInput, NotFound, Unavailable

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CLOSED_PORT_URL = "postgresql+psycopg://postgres@127.0.0.1:1/test"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file in a folder that does not exist yet, or a
    PostgreSQL schema of its own (search_path), dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'catalog.sqlite3'}"
        return
    schema = f"test_catalog_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    catalog = Catalog.from_url(catalog_url)
    catalog.upgrade_schema()
    try:
        yield catalog
    finally:
        catalog.close()


def spec(name: str = "kb", **changes: object) -> CollectionSpec:
    fields: dict[str, object] = {
        "name": name,
        "threshold": 0.5,
        "top_k": 10,
        "term_map": {"wifi": "wireless network"},
        "chunk_max_tokens": 200,
        "chunk_overlap_sentences": 1,
        "model": "all-MiniLM-L6-v2",
        "dimension": 384,
    }
    fields.update(changes)
    return CollectionSpec(**fields)  # type: ignore[arg-type]


def doc(document_id: str, text: str = "Some text.", **fields: object) -> DocumentInput:
    return DocumentInput(id=document_id, text=text, **fields)  # type: ignore[arg-type]


def mark_indexed(
    catalog: Catalog,
    collection: str,
    document_id: str,
    indexed_hash: str,
    chunk_count: int,
    *,
    word_pieces: int = 0,
    unknown: int = 0,
    store_name: str | None = None,
) -> list[str]:
    """Record one document's content as indexed, as an ingest batch records its documents."""
    written = IndexedDocument(indexed_hash, chunk_count, word_pieces, unknown)
    return catalog.mark_documents_indexed(collection, {document_id: written}, store_name=store_name)


# ------------------------------------------------------------------------------- schema


def test_upgrade_schema_on_empty_database_is_idempotent(catalog_url: str) -> None:
    catalog = Catalog.from_url(catalog_url)
    try:
        catalog.upgrade_schema()
        catalog.create_collection(spec())
        catalog.upgrade_schema()
        assert [c.name for c in catalog.list_collections()] == ["kb"]
    finally:
        catalog.close()


def test_migrated_schema_matches_models(catalog: Catalog) -> None:
    with catalog.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_sqlite_parent_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "catalog.sqlite3"
    catalog = Catalog.from_url(f"sqlite:///{path}")
    try:
        catalog.upgrade_schema()
        assert path.is_file()
    finally:
        catalog.close()


# ------------------------------------------------------------------------------- collections


def test_collection_crud(catalog: Catalog) -> None:
    created = catalog.create_collection(spec("kb"))
    assert created.name == "kb"
    assert created.threshold == 0.5
    assert created.term_map == {"wifi": "wireless network"}
    assert created.model == "all-MiniLM-L6-v2"
    assert created.dimension == 384
    assert created.created_at.tzinfo is UTC
    assert created.updated_at.tzinfo is UTC
    assert catalog.get_collection("kb") == created

    catalog.create_collection(spec("faq", top_k=3))
    assert [c.name for c in catalog.list_collections()] == ["faq", "kb"]

    updated = catalog.update_collection("kb", top_k=5)
    assert (updated.top_k, updated.threshold, updated.term_map) == (5, 0.5, created.term_map)
    updated = catalog.update_collection("kb", threshold=0.7)
    assert (updated.top_k, updated.threshold, updated.term_map) == (5, 0.7, created.term_map)
    assert updated.updated_at >= created.updated_at
    assert catalog.get_collection("kb") == updated

    catalog.delete_collection("kb")
    assert [c.name for c in catalog.list_collections()] == ["faq"]


def test_duplicate_collection_is_a_conflict_and_keeps_the_original(catalog: Catalog) -> None:
    original = catalog.create_collection(spec("kb"))
    with pytest.raises(Conflict, match=r"^collection 'kb' already exists$"):
        catalog.create_collection(spec("kb", threshold=0.9, dimension=768))
    assert catalog.get_collection("kb") == original
    assert len(catalog.list_collections()) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_collection("nope"),
        lambda c: c.update_collection("nope", top_k=1),
        lambda c: c.delete_collection("nope"),
        lambda c: c.document_count("nope"),
        lambda c: c.stage_documents("nope", [doc("a")]),
        lambda c: c.list_documents("nope", offset=0, limit=10),
    ],
)
def test_missing_collection_is_not_found(
    catalog: Catalog, call: Callable[[Catalog], object]
) -> None:
    with pytest.raises(NotFound) as raised:
        call(catalog)
    assert str(raised.value) == "collection 'nope' does not exist"


# ------------------------------------------------------------------------------- documents


def test_content_hash_is_canonical() -> None:
    base = doc("a", "text", title="T", source="s", metadata={"x": 1, "y": [1, "é"]})
    same = doc("other-id", "text", title="T", source="s", metadata={"y": [1, "é"], "x": 1})
    assert content_hash(base) == content_hash(same)
    assert len(content_hash(base)) == 64
    for changed in [
        doc("a", "text!", title="T", source="s", metadata={"x": 1, "y": [1, "é"]}),
        doc("a", "text", title=None, source="s", metadata={"x": 1, "y": [1, "é"]}),
        doc("a", "text", title="T", source="s2", metadata={"x": 1, "y": [1, "é"]}),
        doc("a", "text", title="T", source="s", metadata={"x": 2, "y": [1, "é"]}),
    ]:
        assert content_hash(changed) != content_hash(base)


def test_metadata_that_is_not_json_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="metadata of document 'a' is not plain JSON"):
        content_hash(doc("a", metadata={"when": object()}))
    with pytest.raises(InvalidInput, match="metadata of document 'a' is not plain JSON"):
        content_hash(doc("a", metadata={"score": float("nan")}))


def test_stage_documents_upsert_semantics(catalog: Catalog) -> None:
    catalog.create_collection(spec("kb"))
    first = [
        doc("a", "Alpha.", title="A", source="a.txt", metadata={"lang": "en", "n": [1, 2]}),
        doc("b", "Beta."),
    ]
    job = catalog.stage_documents("kb", first)
    assert (job.collection, job.status, job.documents_total) == ("kb", JobStatus.QUEUED, 2)

    a = catalog.get_document("kb", "a")
    assert (a.status, a.indexed_hash, a.chunk_count, a.error) == (
        DocumentStatus.PENDING,
        None,
        0,
        None,
    )
    assert (a.collection, a.text, a.title, a.source) == ("kb", "Alpha.", "A", "a.txt")
    assert a.metadata == {"lang": "en", "n": [1, 2]}
    assert a.content_hash == content_hash(first[0])
    assert a.created_at.tzinfo is UTC

    mark_indexed(catalog, "kb", "a", a.content_hash, chunk_count=3)
    catalog.mark_document_failed("kb", "b", error="embedding failed")
    a = catalog.get_document("kb", "a")
    assert (a.status, a.indexed_hash, a.chunk_count) == (DocumentStatus.INDEXED, a.content_hash, 3)
    b = catalog.get_document("kb", "b")
    assert (b.status, b.error) == (DocumentStatus.FAILED, "embedding failed")

    # Same content as indexed: stays indexed. Failed one re-staged: pending, error cleared.
    catalog.stage_documents("kb", first)
    a = catalog.get_document("kb", "a")
    assert (a.status, a.chunk_count) == (DocumentStatus.INDEXED, 3)
    b = catalog.get_document("kb", "b")
    assert (b.status, b.error) == (DocumentStatus.PENDING, None)

    # Changed content: pending again; the old chunks are still recorded until re-indexed.
    changed = doc("a", "Alpha, revised.", title="A", source="a.txt")
    catalog.stage_documents("kb", [changed])
    a = catalog.get_document("kb", "a")
    assert (a.status, a.text, a.metadata) == (DocumentStatus.PENDING, "Alpha, revised.", {})
    assert a.content_hash == content_hash(changed) != a.indexed_hash
    assert a.chunk_count == 3

    # Back to the indexed content: indexed again without any ingestion.
    catalog.stage_documents("kb", [first[0]])
    assert catalog.get_document("kb", "a").status is DocumentStatus.INDEXED
    assert catalog.document_count("kb") == 2


def test_indexing_a_stale_hash_leaves_the_document_pending(catalog: Catalog) -> None:
    catalog.create_collection(spec("kb"))
    catalog.stage_documents("kb", [doc("a", "old")])
    old_hash = catalog.get_document("kb", "a").content_hash
    catalog.stage_documents("kb", [doc("a", "new")])  # re-uploaded while the first job ran
    mark_indexed(catalog, "kb", "a", old_hash, chunk_count=1)
    a = catalog.get_document("kb", "a")
    assert (a.status, a.indexed_hash) == (DocumentStatus.PENDING, old_hash)


def test_duplicate_ids_in_one_call_are_invalid_and_nothing_is_written(catalog: Catalog) -> None:
    catalog.create_collection(spec("kb"))
    with pytest.raises(InvalidInput, match=r"document id 'a' appears more than once"):
        catalog.stage_documents("kb", [doc("a"), doc("b"), doc("a", "again")])
    assert catalog.document_count("kb") == 0
    assert catalog.list_documents("kb", offset=0, limit=10) == ([], 0)
    assert catalog.unfinished_job_ids() == []


def test_list_get_and_delete_documents(catalog: Catalog) -> None:
    catalog.create_collection(spec("kb"))
    catalog.create_collection(spec("other"))
    catalog.stage_documents("kb", [doc(i, f"text {i}") for i in ["c", "a", "e", "b", "d"]])
    catalog.stage_documents("other", [doc("a", "elsewhere")])

    page, total = catalog.list_documents("kb", offset=1, limit=2)
    assert total == 5
    assert [d.id for d in page] == ["b", "c"]
    assert page[0].text == "text b"
    page, total = catalog.list_documents("kb", offset=4, limit=10)
    assert ([d.id for d in page], total) == (["e"], 5)
    with pytest.raises(InvalidInput):
        catalog.list_documents("kb", offset=-1, limit=10)

    catalog.delete_document("kb", "a")
    assert catalog.document_count("kb") == 4
    assert catalog.get_document("other", "a").text == "elsewhere"
    with pytest.raises(NotFound) as raised:
        catalog.get_document("kb", "a")
    assert str(raised.value) == "document 'a' does not exist in collection 'kb'"
    with pytest.raises(NotFound, match="document 'a' does not exist in collection 'kb'"):
        catalog.delete_document("kb", "a")
    # One deleted while the chunks were written: the others recorded, its id returned.
    b_hash = catalog.get_document("kb", "b").content_hash
    written = {
        key: IndexedDocument(key_hash, 1, 0, 0)
        for key, key_hash in (("zz", "0" * 64), ("b", b_hash))
    }
    assert catalog.mark_documents_indexed("kb", written) == ["zz"]
    assert catalog.get_document("kb", "b").status == DocumentStatus.INDEXED
    assert catalog.document_count("kb") == 4


# ------------------------------------------------------------------------------- jobs


def test_job_lifecycle_and_progress(catalog: Catalog) -> None:
    catalog.create_collection(spec("kb"))
    staged = catalog.stage_documents("kb", [doc("z"), doc("a"), doc("m")])
    job = catalog.get_job(staged.id)
    assert job == staged
    assert uuid.UUID(job.id).version == 4
    assert (job.status, job.documents_total, job.documents_done) == (JobStatus.QUEUED, 3, 0)
    assert (job.started_at, job.finished_at, job.error) == (None, None, None)
    assert catalog.job_document_ids(job.id) == ["z", "a", "m"]

    catalog.start_job(job.id, chunks_total=12)
    running = catalog.get_job(job.id)
    assert (running.status, running.chunks_total) == (JobStatus.RUNNING, 12)
    assert running.started_at is not None
    assert running.started_at.tzinfo is UTC
    assert running.started_at >= running.created_at

    catalog.record_job_progress(job.id, documents_done=2, chunks_done=7)
    progress = catalog.get_job(job.id)
    assert (progress.documents_done, progress.chunks_done) == (2, 7)

    catalog.record_job_progress(job.id, documents_done=3, chunks_done=12)
    catalog.finish_job(job.id)
    done = catalog.get_job(job.id)
    assert (done.status, done.documents_done, done.chunks_done) == (JobStatus.SUCCEEDED, 3, 12)
    assert done.finished_at is not None
    assert done.started_at is not None
    assert done.finished_at >= done.started_at


def test_failed_job_keeps_a_truncated_error(catalog: Catalog) -> None:
    catalog.create_collection(spec("kb"))
    job = catalog.stage_documents("kb", [doc("a")])
    catalog.start_job(job.id, chunks_total=1)
    catalog.fail_job(job.id, error="boom " * 10_000)
    failed = catalog.get_job(job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.finished_at is not None
    assert failed.error is not None
    assert failed.error.startswith("boom boom")
    assert len(failed.error) <= MAX_ERROR_CHARS


def test_missing_job_is_not_found(catalog: Catalog) -> None:
    missing = str(uuid.uuid4())
    calls: list[Callable[[], object]] = [
        lambda: catalog.get_job(missing),
        lambda: catalog.job_document_ids(missing),
        lambda: catalog.start_job(missing, chunks_total=1),
        lambda: catalog.record_job_progress(missing, documents_done=1, chunks_done=1),
        lambda: catalog.finish_job(missing),
        lambda: catalog.fail_job(missing, error="x"),
    ]
    for call in calls:
        with pytest.raises(NotFound) as raised:
            call()
        assert str(raised.value) == f"job '{missing}' does not exist"


def test_unfinished_job_ids_oldest_first(catalog: Catalog) -> None:
    catalog.create_collection(spec("kb"))
    jobs = [catalog.stage_documents("kb", [doc(f"d{i}")]).id for i in range(4)]
    catalog.start_job(jobs[0], chunks_total=1)
    catalog.finish_job(jobs[1])
    catalog.start_job(jobs[3], chunks_total=1)
    catalog.fail_job(jobs[3], error="x")
    assert catalog.unfinished_job_ids() == [jobs[0], jobs[2]]


def test_delete_collection_cascades_to_documents_and_jobs(catalog: Catalog) -> None:
    catalog.create_collection(spec("kb"))
    catalog.create_collection(spec("keep"))
    job = catalog.stage_documents("kb", [doc("a"), doc("b")])
    kept = catalog.stage_documents("keep", [doc("a")])
    catalog.delete_collection("kb")

    with pytest.raises(NotFound, match=f"job '{job.id}' does not exist"):
        catalog.get_job(job.id)
    with pytest.raises(NotFound):
        catalog.job_document_ids(job.id)
    assert catalog.unfinished_job_ids() == [kept.id]
    assert catalog.job_document_ids(kept.id) == ["a"]

    catalog.create_collection(spec("kb"))
    assert catalog.document_count("kb") == 0
    assert catalog.document_count("keep") == 1


# ------------------------------------------------------------------------------- threads


def test_concurrent_writers_and_readers(catalog: Catalog) -> None:
    """An ingest-like writer and API-like readers and stagers at once: no lock errors."""
    catalog.create_collection(spec("kb"))
    errors: list[BaseException] = []
    rounds = 15

    def stager(worker: int) -> None:
        for i in range(rounds):
            job = catalog.stage_documents("kb", [doc(f"w{worker}-{i}"), doc("shared", f"{i}")])
            catalog.start_job(job.id, chunks_total=2)
            record = catalog.get_document("kb", f"w{worker}-{i}")
            mark_indexed(catalog, "kb", record.id, record.content_hash, chunk_count=1)
            catalog.finish_job(job.id)

    def reader() -> None:
        for _ in range(rounds * 2):
            catalog.list_documents("kb", offset=0, limit=50)
            catalog.unfinished_job_ids()

    def run(target: Callable[..., None], *args: object) -> None:
        try:
            target(*args)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(stager, w)) for w in range(3)]
    threads += [threading.Thread(target=run, args=(reader,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert catalog.document_count("kb") == 3 * rounds + 1
    assert catalog.unfinished_job_ids() == []


# ------------------------------------------------------------------------------- faults


def test_unreachable_database_is_unavailable_quickly() -> None:
    catalog = Catalog.from_url(CLOSED_PORT_URL)
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match=r"^catalog database unavailable: ") as raised:
            catalog.list_collections()
        assert time.monotonic() - started < 5
        assert raised.value.__cause__ is not None
        assert "127.0.0.1" not in str(raised.value)  # hosts and users go to the log only
        with pytest.raises(Unavailable, match=r"^catalog database unavailable: "):
            catalog.upgrade_schema()
        with pytest.raises(Unavailable):
            catalog.stage_documents("kb", [doc("a")])
    finally:
        catalog.close()


# ----------------------------------------------------------------------- re-indexing


def indexed(hash_: str, chunks: int = 1) -> IndexedDocument:
    return IndexedDocument(
        content_hash=hash_, chunk_count=chunks, word_pieces=7, unknown_word_pieces=1
    )


def test_a_reindex_swaps_in_only_when_it_holds_every_current_document(catalog: Catalog) -> None:
    created = catalog.create_collection(spec())
    catalog.stage_documents("kb", [DocumentInput(id="a", text="alpha")])
    new_settings = IndexSettings(
        model="multilingual-e5-small",
        dimension=384,
        term_map={},
        chunk_max_tokens=400,
        chunk_overlap_sentences=0,
    )
    reindex, job = catalog.start_reindex("kb", new_settings)
    assert (job.kind, job.documents_total) == (JobKind.REINDEX, 1)
    assert reindex.store_name.startswith("kb.")
    assert reindex.store_name != created.store_name
    with pytest.raises(Conflict, match="being re-indexed"):
        catalog.start_reindex("kb", new_settings)
    hash_a = catalog.get_document("kb", "a").content_hash

    # A document staged meanwhile: the swap is refused until the re-index holds it too.
    catalog.record_reindexed(job.id, {"a": indexed(hash_a)})
    catalog.stage_documents("kb", [DocumentInput(id="b", text="beta")])
    assert catalog.complete_reindex("kb", job.id) is None
    assert catalog.get_collection("kb").store_name == created.store_name
    hash_b = catalog.get_document("kb", "b").content_hash
    catalog.record_reindexed(job.id, {"b": indexed("an earlier text of b")})
    assert catalog.complete_reindex("kb", job.id) is None  # b's record is of another text
    catalog.record_reindexed(job.id, {"b": indexed(hash_b, chunks=3)})
    assert set(catalog.reindexed_documents(job.id)) == {"a", "b"}

    retired = catalog.complete_reindex("kb", job.id)

    assert retired == created.store_name
    collection = catalog.get_collection("kb")
    assert (collection.model, collection.chunk_max_tokens, collection.term_map) == (
        "multilingual-e5-small",
        400,
        {},
    )
    assert (collection.store_name, collection.reindex) == (reindex.store_name, None)
    document = catalog.get_document("kb", "b")
    assert (document.status, document.chunk_count, document.indexed_hash) == ("indexed", 3, hash_b)
    assert catalog.language_counts("kb") == (14, 2)
    assert catalog.reindexed_documents(job.id) == {}  # the records have served
    with pytest.raises(NotFound, match="no re-index by job"):
        catalog.complete_reindex("kb", job.id)


def test_an_abandoned_reindex_leaves_the_collection_as_it_was(catalog: Catalog) -> None:
    before = catalog.create_collection(spec())
    settings = IndexSettings(
        model="m", dimension=8, term_map={}, chunk_max_tokens=100, chunk_overlap_sentences=0
    )
    catalog.stage_documents("kb", [DocumentInput(id="a", text="alpha")])
    reindex, job = catalog.start_reindex("kb", settings)
    catalog.record_reindexed(job.id, {"a": indexed(catalog.get_document("kb", "a").content_hash)})

    assert catalog.abandon_reindex("kb", "another-job") is None
    assert catalog.abandon_reindex("kb", job.id) == reindex.store_name
    assert catalog.reindexed_documents(job.id) == {}

    after = catalog.get_collection("kb")
    assert (after.model, after.store_name, after.reindex) == (before.model, before.store_name, None)
    # The next re-index gets a fresh store collection, never the abandoned one's.
    assert catalog.start_reindex("kb", settings)[0].store_name not in {
        reindex.store_name,
        before.store_name,
    }


def test_an_ingest_that_a_reindex_overtook_records_nothing(catalog: Catalog) -> None:
    old_store = catalog.create_collection(spec()).store_name
    catalog.stage_documents("kb", [DocumentInput(id="a", text="alpha")])
    hash_a = catalog.get_document("kb", "a").content_hash
    _, job = catalog.start_reindex(
        "kb",
        IndexSettings(
            model="m", dimension=8, term_map={}, chunk_max_tokens=100, chunk_overlap_sentences=0
        ),
    )
    catalog.record_reindexed(job.id, {"a": indexed(hash_a, chunks=2)})
    catalog.complete_reindex("kb", job.id)

    mark_indexed(catalog, "kb", "a", hash_a, chunk_count=9, store_name=old_store)

    assert catalog.get_document("kb", "a").chunk_count == 2


def test_language_counts_are_reread_only_after_their_collections_documents_change(
    catalog: Catalog,
) -> None:
    for name in ("kb", "other"):
        catalog.create_collection(spec(name))
        catalog.stage_documents(name, [DocumentInput(id="a", text="alpha")])
    statements: list[str] = []
    event.listen(catalog.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    def sums_read() -> int:
        return sum("sum(" in statement.lower() for statement in statements)

    assert catalog.language_counts("kb") == (0, 0)
    # Another collection's documents and any job: the memo stands, no new SUM.
    other_hash = catalog.get_document("other", "a").content_hash
    mark_indexed(catalog, "other", "a", other_hash, chunk_count=1, word_pieces=9)
    catalog.stage_documents("other", [DocumentInput(id="b", text="beta")])
    assert catalog.language_counts("kb") == (0, 0)
    assert sums_read() == 1
    # Its own document indexed: read again at once.
    kb_hash = catalog.get_document("kb", "a").content_hash
    mark_indexed(catalog, "kb", "a", kb_hash, chunk_count=1, word_pieces=5, unknown=2)
    assert catalog.language_counts("kb") == (5, 2)
    assert sums_read() == 2
    catalog.delete_document("kb", "a")
    assert catalog.language_counts("kb") == (0, 0)
    assert catalog.language_counts("other") == (9, 0)


def test_a_large_ingest_is_split_into_parts_that_end_it_together(catalog_url: str) -> None:
    catalog = Catalog.from_url(catalog_url, job_part_documents=10)
    catalog.upgrade_schema()
    try:
        catalog.create_collection(spec("kb"))
        earlier = catalog.stage_documents("kb", [doc("d00", "indexed before")])
        mark_indexed(catalog, "kb", "d00", content_hash(doc("d00", "indexed before")), 1)
        catalog.finish_job(earlier.id)
        documents = [doc("d00", "indexed before")] + [doc(f"d{n:02}") for n in range(1, 25)]

        job = catalog.stage_documents("kb", documents)
        parts = catalog.runnable_job_ids(job)

        assert job.parts == 3
        assert [catalog.job_document_ids(part) for part in parts] == [
            [f"d{n:02}" for n in range(start, min(start + 10, 25))] for start in (0, 10, 20)
        ]
        assert [catalog.get_job(part).documents_unchanged for part in parts] == [1, 0, 0]
        assert catalog.job_document_ids(job.id) == []  # the job runs nothing itself
        assert catalog.unfinished_job_ids() == parts
        assert catalog.queued_job_ids(before=utc_now() + timedelta(seconds=1)) == parts
        assert [listed.id for listed in catalog.list_jobs("kb", limit=10)] == [job.id, earlier.id]

        catalog.start_job(parts[0], chunks_total=9)
        catalog.record_job_progress(parts[0], documents_done=4, chunks_done=5)
        catalog.start_job(parts[1], chunks_total=10)
        running = catalog.get_job(job.id)
        assert running.status is JobStatus.RUNNING
        assert (running.documents_done, running.chunks_done, running.chunks_total) == (4, 5, 19)
        assert catalog.claim_stalled_job_ids(before=utc_now() + timedelta(seconds=1)) == sorted(
            parts[:2]
        )

        catalog.finish_job(parts[0])
        catalog.fail_job(parts[1], error="1 of 10 documents failed; d13: too long")
        assert catalog.get_job(job.id).status is JobStatus.RUNNING  # a part is still queued
        catalog.finish_job(parts[2])

        ended = catalog.get_job(job.id)
        assert ended.status is JobStatus.FAILED
        assert ended.error == "1 of 3 parts failed: 1 of 10 documents failed; d13: too long"
        assert ended.finished_at is not None
        assert catalog.unfinished_job_ids() == []
    finally:
        catalog.close()


def test_a_job_of_parts_succeeds_when_every_part_does(catalog: Catalog) -> None:
    parted = Catalog(engine=catalog.engine, job_part_documents=2)
    catalog.create_collection(spec("kb"))
    job = parted.stage_documents("kb", [doc(f"d{n}") for n in range(5)])
    for part in parted.runnable_job_ids(job):
        parted.start_job(part, chunks_total=1)
        parted.finish_job(part)

    ended = parted.get_job(job.id)
    assert (ended.status, ended.error, ended.parts) == (JobStatus.SUCCEEDED, None, 3)
    small = parted.stage_documents("kb", [doc("one")])
    assert (small.parts, parted.runnable_job_ids(small)) == (0, [small.id])


def test_a_large_reindex_is_split_into_parts_and_the_last_to_end_swaps_it_in(
    catalog: Catalog,
) -> None:
    parted = Catalog(engine=catalog.engine, job_part_documents=2)
    before = parted.create_collection(spec("kb"))
    parted.stage_documents("kb", [doc(f"d{n}") for n in range(5)])
    settings = IndexSettings(
        model="m", dimension=8, term_map={}, chunk_max_tokens=100, chunk_overlap_sentences=0
    )

    reindex, job = parted.start_reindex("kb", settings)
    parts = parted.runnable_job_ids(job)

    assert (job.kind, job.parts, job.documents_total) == (JobKind.REINDEX, 3, 5)
    assert [parted.get_job(part).kind for part in parts] == [JobKind.REINDEX] * 3
    assert [parted.job_document_ids(part) for part in parts] == [
        ["d0", "d1"],
        ["d2", "d3"],
        ["d4"],
    ]
    # Parts end in any order; each but the last is marked succeeded; the last stays running
    # until it has swapped the re-index in.
    for part in parts:
        parted.start_job(part, chunks_total=1)
    assert parted.finish_reindex_part(parts[2]) is False
    assert parted.finish_reindex_part(parts[0]) is False
    assert parted.get_job(job.id).status is JobStatus.RUNNING
    assert parted.finish_reindex_part(parts[1]) is True
    assert parted.get_job(parts[1]).status is JobStatus.RUNNING

    parted.record_reindexed(
        job.id,
        {
            document_id: indexed(parted.get_document("kb", document_id).content_hash)
            for document_id in (f"d{n}" for n in range(5))
        },
    )
    assert parted.complete_reindex("kb", job.id) == before.store_name
    parted.finish_job(parts[1])

    ended = parted.get_job(job.id)
    assert (ended.status, ended.documents_total) == (JobStatus.SUCCEEDED, 5)
    assert parted.get_collection("kb").store_name == reindex.store_name
