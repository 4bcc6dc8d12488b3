"""The `semsearch` commands that use a running service, driven as a person types them, against
the real service on a real port: exit codes, what they print, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner, Result

from api.cli import cli
from api.cli_keys import open_catalog
from api.client import SemsearchClient
from api.schemas import CollectionCreate, DocumentIn
from retrieval.access import Scope, issue_key
from retrieval.catalog import utc_now
from retrieval.config import Settings
from retrieval.models.registry import MINILM

CLOSED_PORT_URL = "http://127.0.0.1:1"
USAGE_OR_USER_ERROR = 2
"""What `fail()` and click's usage errors exit with."""

DOCUMENTS = [
    DocumentIn(
        id="guides/reset password",
        title="Reset a password",
        text="To reset your password, open Settings, choose Security and click Reset password.",
        metadata={"lang": "en"},
    ),
    DocumentIn(
        id="refund",
        title="Refunds",
        text="Refunds are paid back to the original card within five business days.",
        metadata={"lang": "en"},
    ),
    DocumentIn(
        id="margin",
        title="保证金",
        text="期货交易保证金是买卖期货合约时存入的资金，比例由交易所规定。",
        metadata={"lang": "zh"},
    ),
]


def run(*args: str, url: str | None = None, input: str | None = None) -> Result:
    arguments = [*args, "--url", url] if url else list(args)
    return CliRunner().invoke(cli, arguments, input=input)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == USAGE_OR_USER_ERROR, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def kb(live_url: str) -> str:
    """A collection `kb` holding DOCUMENTS, indexed; yields the service's URL."""
    with SemsearchClient(base_url=live_url) as client:
        client.create_collection(
            CollectionCreate(name="kb", threshold=0.3, filterable={"lang": "keyword"})
        )
        job = client.ingest("kb", DOCUMENTS)
        assert client.wait_for_job(job.id, timeout_s=120).status == "succeeded"
    return live_url


@pytest.mark.parametrize(
    "command",
    [
        ["collection", "list"],
        ["collection", "show", "kb"],
        ["collection", "create", "kb"],
        ["collection", "update", "kb", "--threshold", "0.5"],
        ["collection", "delete", "kb", "--yes"],
        ["documents", "list", "kb"],
        ["documents", "show", "kb", "a"],
        ["documents", "delete", "kb", "a"],
        ["jobs", "show", "j"],
        ["jobs", "wait", "j"],
        ["search", "kb", "refund"],
        ["similarity", "a", "b"],
        ["models"],
    ],
)
def test_a_stopped_service_is_one_line_naming_the_url(command: list[str]) -> None:
    result = run(*command, url=CLOSED_PORT_URL)
    assert_one_line_error(
        result, f"cannot reach the semsearch service at {CLOSED_PORT_URL}", "semsearch serve"
    )


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["search", "kb", "refund", "--bogus"], "No such option: --bogus"),
        (["search", "kb", "refund", "--mode", "fuzzy"], "'fuzzy' is not one of"),
        (["search", "kb"], "Missing argument 'QUERY'"),
        (["search", "kb", "refund", "--top-k", "0"], "--top-k"),
        (["search", "kb", "refund", "--filter", '{"lang": '], "--filter is not valid JSON"),
        (["search", "kb", "refund", "--filter", '["en"]'], "--filter must be a JSON object"),
        (["search", "kb", "refund", "--filter", '{"must": 3}'], "--filter.must: expected a list"),
        (["collection", "create", "kb", "--filterable", "lang"], "expected FIELD=KIND"),
        (["collection", "create", "kb", "--threshold", "2"], "--threshold"),
        (["search", "kb", ""], "query: String should have at least 1 character"),
        (["collection", "create", "bad name"], "name: String should match pattern"),
        (["collection", "update", "kb"], "nothing to change"),
        (["documents", "list", "kb", "--url", "localhost:8000"], "--url must start with http"),
    ],
)
def test_usage_errors_are_one_line_and_exit_non_zero(command: list[str], message: str) -> None:
    """Each is refused before any request: the URL is a closed port."""
    url_given = "--url" in command
    assert_one_line_error(run(*command, url=None if url_given else CLOSED_PORT_URL), message)


def test_settings_errors_show_before_the_model_loads() -> None:
    """`serve` with a bad setting says so in one line before torch (the models) is imported."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('torch imported:', 'torch' in sys.modules))\n"
        "from api.cli import main\n"
        "sys.argv = ['semsearch', 'serve']\n"
        "main()\n"
    )
    environment = {**os.environ, "SEMSEARCH_PORT": "eighty"}
    finished = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == USAGE_OR_USER_ERROR, finished.stderr
    assert finished.stderr.strip().splitlines() == [
        "error: invalid settings: SEMSEARCH_PORT: Input should be a valid integer, unable to "
        "parse string as an integer"
    ]
    assert finished.stdout.strip() == "torch imported: False"


def test_collection_create_show_update_list_and_delete(live_url: str, tmp_path: Path) -> None:
    terms_csv = tmp_path / "terms.csv"
    terms_csv.write_text("term,replacement\npwd,password\nCTP保证金,期货交易保证金\n")
    created = run(
        "collection", "create", "faq",
        "--model", MINILM.name,
        "--mode", "dense",
        "--threshold", "0.42",
        "--top-k", "4",
        "--term-map", str(terms_csv),
        "--filterable", "lang=keyword",
        "--filterable", "year=integer",
        "--chunk-tokens", "120",
        "--chunk-overlap", "1",
        url=live_url,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert "created faq: model all-MiniLM-L6-v2, mode dense, threshold 0.42, top_k 4, 2 terms" in (
        created.stdout
    )

    shown = run("collection", "show", "faq", "--json", url=live_url)
    assert shown.exit_code == 0, shown.output
    collection = json.loads(shown.stdout)
    assert collection["term_map"] == {"pwd": "password", "CTP保证金": "期货交易保证金"}
    assert collection["filterable"] == {"lang": "keyword", "year": "integer"}
    assert collection["chunking"] == {"max_tokens": 120, "overlap_sentences": 1}
    assert (collection["mode"], collection["threshold"], collection["top_k"]) == ("dense", 0.42, 4)

    terms_json = tmp_path / "terms.json"
    terms_json.write_text(json.dumps({"refund": "money back"}))
    updated = run(
        "collection", "update", "faq", "--threshold", "0.7", "--term-map", str(terms_json),
        "--chunk-tokens", "200", "--wait", url=live_url,
    )  # fmt: skip
    assert updated.exit_code == 0, updated.output
    assert "updated faq: threshold 0.7" in updated.stdout
    assert "re-indexed in job" in updated.stdout

    table = run("collection", "show", "faq", url=live_url)
    assert table.exit_code == 0, table.output
    assert "refund -> money back" in table.stdout
    assert "pwd" not in table.stdout
    assert "200 tokens, overlap 1 sentences" in table.stdout  # overlap kept as it was
    assert "0.7" in table.stdout

    listed = run("collection", "list", "--json", url=live_url)
    assert [c["name"] for c in json.loads(listed.stdout)["collections"]] == ["faq"]
    assert "faq" in run("collection", "list", url=live_url).stdout

    kept = run("collection", "delete", "faq", url=live_url, input="n\n")
    assert kept.exit_code == 1
    assert "kept faq" in kept.stderr
    assert run("collection", "show", "faq", url=live_url).exit_code == 0

    deleted = run("collection", "delete", "faq", url=live_url, input="y\n")
    assert deleted.exit_code == 0, deleted.output
    assert "deleted faq" in deleted.stdout
    assert_one_line_error(
        run("collection", "show", "faq", url=live_url), "collection 'faq' does not exist"
    )
    assert_one_line_error(
        run("collection", "delete", "faq", "--yes", url=live_url), "'faq' does not exist"
    )


def test_an_unreadable_term_map_is_one_line_naming_the_file_and_line(tmp_path: Path) -> None:
    bad_csv = tmp_path / "terms.csv"
    bad_csv.write_text("pwd,password\njust-one-column\n")
    assert_one_line_error(
        run("collection", "create", "kb", "--term-map", str(bad_csv), url=CLOSED_PORT_URL),
        f"{bad_csv}:2: expected two columns",
    )
    tsv = tmp_path / "terms.tsv"
    tsv.write_text("pwd\tpassword\npwd\tpass word\n")
    assert_one_line_error(
        run("collection", "create", "kb", "--term-map", str(tsv), url=CLOSED_PORT_URL),
        f"{tsv}:2: 'pwd' is mapped twice",
    )
    not_an_object = tmp_path / "terms.json"
    not_an_object.write_text('["pwd", "password"]')
    assert_one_line_error(
        run("collection", "create", "kb", "--term-map", str(not_an_object), url=CLOSED_PORT_URL),
        "must hold one JSON object",
    )


def test_documents_list_show_and_delete(kb: str) -> None:
    listed = run("documents", "list", "kb", url=kb)
    assert listed.exit_code == 0, listed.output
    for document_id in ("guides/reset", "margin", "refund"):
        assert document_id in listed.stdout
    assert "documents 1-3 of 3" in listed.stdout

    page = run("documents", "list", "kb", "--offset", "1", "--limit", "1", "--json", url=kb)
    assert page.exit_code == 0, page.output
    body = json.loads(page.stdout)
    assert body["count"] == 3
    assert [document["id"] for document in body["documents"]] == ["margin"]

    shown = run("documents", "show", "kb", "guides/reset password", "--json", url=kb)
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert (document["title"], document["status"]) == ("Reset a password", "indexed")
    assert document["metadata"] == {"lang": "en"}
    assert '{"lang": "zh"}' in run("documents", "show", "kb", "margin", url=kb).stdout

    deleted = run("documents", "delete", "kb", "guides/reset password", url=kb)
    assert deleted.exit_code == 0, deleted.output
    assert "deleted guides/reset password from kb" in deleted.stdout
    assert_one_line_error(
        run("documents", "show", "kb", "guides/reset password", url=kb), "does not exist"
    )
    assert "documents 1-2 of 2" in run("documents", "list", "kb", url=kb).stdout
    assert_one_line_error(run("documents", "list", "nope", url=kb), "'nope' does not exist")


def test_reindex_rebuilds_and_follows_its_job(kb: str) -> None:
    queued = run("reindex", "kb", "--json", url=kb)
    assert queued.exit_code == 0, queued.output
    job = json.loads(queued.stdout)
    assert (job["kind"], job["collection"]) == ("reindex", "kb")
    assert run("jobs", "wait", job["id"], "--timeout", "120", url=kb).exit_code == 0

    waited = run("reindex", "kb", "--wait", url=kb)
    assert waited.exit_code == 0, waited.output
    assert "(reindex, kb): succeeded" in waited.stdout
    assert "3/3 documents" in waited.stdout
    assert_one_line_error(run("reindex", "nope", url=kb), "collection 'nope'")


def test_jobs_show_and_wait(live_url: str) -> None:
    with SemsearchClient(base_url=live_url) as client:
        client.create_collection(CollectionCreate(name="kb"))
        job = client.ingest("kb", DOCUMENTS)

    waited = run("jobs", "wait", job.id, "--timeout", "120", url=live_url)
    assert waited.exit_code == 0, waited.output
    assert f"job {job.id} (ingest, kb): succeeded" in waited.stdout
    assert "3/3 documents" in waited.stdout

    shown = run("jobs", "show", job.id, "--json", url=live_url)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["status"] == "succeeded"
    table = run("jobs", "show", job.id, url=live_url)
    assert "succeeded" in table.stdout
    assert "3/3" in table.stdout

    as_json = run("jobs", "wait", job.id, "--json", url=live_url)
    assert json.loads(as_json.stdout)["documents_done"] == 3
    assert_one_line_error(run("jobs", "show", "no-such-job", url=live_url), "does not exist")


def test_search_prints_hits_json_and_says_when_nothing_reached_the_threshold(kb: str) -> None:
    found = run("search", "kb", "how do I reset my password?", url=kb)
    assert found.exit_code == 0, found.output
    assert "guides/reset" in found.stdout
    assert "score" in found.stdout

    as_json = run("search", "kb", "refund to my card", "--json", "--top-k", "1", url=kb)
    assert as_json.exit_code == 0, as_json.output
    answer = json.loads(as_json.stdout)
    assert [hit["document_id"] for hit in answer["hits"]] == ["refund"]
    assert answer["threshold"] == 0.3

    filtered = run(
        "search", "kb", "money", "--filter", '{"lang": "zh"}', "--threshold", "-1", "--json",
        url=kb,
    )  # fmt: skip
    assert filtered.exit_code == 0, filtered.output
    assert {hit["document_id"] for hit in json.loads(filtered.stdout)["hits"]} == {"margin"}

    lexical = run("search", "kb", "refunds", "--mode", "lexical", "--json", url=kb)
    assert json.loads(lexical.stdout)["mode"] == "lexical"

    nothing = run("search", "kb", "the weather on Mars", "--threshold", "0.95", url=kb)
    assert nothing.exit_code == 0, nothing.output
    assert (
        "no hit: nothing in kb scored at or above the threshold 0.95 (hybrid search, model "
        "all-MiniLM-L6-v2)" in nothing.stdout  # hybrid: auto mode, as MiniLM cannot read 保证金
    )
    assert_one_line_error(
        run("search", "nope", "refund", url=kb), "collection 'nope' does not exist"
    )


def test_similarity_prints_a_score_per_text(live_url: str) -> None:
    result = run(
        "similarity", "How do I reset my password", "change the login password", "rainy weather",
        url=live_url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == [
        "change the login password",
        "rainy weather",
    ]
    close, far = (float(line.split()[0]) for line in lines)
    assert close > far + 0.2

    as_json = run("similarity", "refund", "money back", "--json", url=live_url)
    [score] = json.loads(as_json.stdout)
    assert 0.0 < score < 1.0
    assert_one_line_error(
        run("similarity", "a", "b", "--model", "no-such-model", url=live_url), "no-such-model"
    )
    models = run("models", "--json", url=live_url)
    assert [m["name"] for m in json.loads(models.stdout)["models"] if m["default"]] == [MINILM.name]


@pytest.fixture
def admin_token(settings: Settings) -> str:
    """An admin key in the service's catalog, made before `live_url` starts the service."""
    catalog = open_catalog(settings)
    try:
        issued = issue_key(name="ops", scopes=[Scope.ADMIN], collections=None, now=utc_now())
        catalog.add_api_key(issued)
    finally:
        catalog.close()
    return issued.token


def test_the_api_key_comes_from_the_option_or_the_environment(
    admin_token: str, live_url: str
) -> None:
    assert_one_line_error(
        run("collection", "list", url=live_url), "an API key is required", "--api-key"
    )
    with_option = run("collection", "list", "--api-key", admin_token, "--json", url=live_url)
    assert with_option.exit_code == 0, with_option.output
    assert json.loads(with_option.stdout)["count"] == 0
    from_environment = CliRunner().invoke(
        cli,
        ["collection", "create", "kb", "--url", live_url],
        env={"SEMSEARCH_API_KEY": admin_token},
    )
    assert from_environment.exit_code == 0, from_environment.output
    assert_one_line_error(
        run("search", "kb", "x", "--api-key", "ssk_wrong_key", url=live_url), "unknown or revoked"
    )


COMMANDS_WITH_EXAMPLES = [
    [],
    ["collection"],
    ["collection", "list"],
    ["collection", "show"],
    ["collection", "create"],
    ["collection", "update"],
    ["collection", "delete"],
    ["documents"],
    ["documents", "list"],
    ["documents", "show"],
    ["documents", "delete"],
    ["jobs"],
    ["jobs", "show"],
    ["jobs", "wait"],
    ["search"],
    ["similarity"],
    ["models"],
]


@pytest.mark.parametrize("command", COMMANDS_WITH_EXAMPLES, ids=lambda c: " ".join(c) or "-")
def test_help_shows_each_example_on_a_line_of_its_own(command: list[str]) -> None:
    documented = get_command(cli)
    for name in command:
        assert isinstance(documented, TyperGroup)
        documented = documented.commands[name]
    examples = [
        line.strip()
        for line in (documented.help or "").split("Examples:", 1)[1].splitlines()
        if line.strip().startswith("semsearch ")
    ]
    assert examples, f"{command}: no examples in the help"

    result = CliRunner().invoke(cli, [*command, "--help"], terminal_width=100)

    assert result.exit_code == 0, result.output
    shown = {line.strip() for line in result.stdout.splitlines()}
    for example in examples:
        assert example in shown, f"{example!r} is not a line of:\n{result.stdout}"
