"""The web console: its page and assets, the routes it calls, and the console itself driven
in a real headless Chromium against a real service (uvicorn, the real app and models).

The browser tests need Debian's chromium (`apt-get install chromium`) and Playwright for
Python from the test extras; Playwright drives the system's browser, it never downloads one.
Each browser test saves screenshots under test-output/console/ at the repository root.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docx
import httpx
import pytest
from fastapi.testclient import TestClient

from api.routes.console import CONSOLE_DIR
from api.samples import read_samples
from retrieval.config import Settings
from tests.conftest import LIVE_TIMEOUT_S, live_get, live_post, wait_for_job

try:
    from playwright.sync_api import expect
except ImportError:  # a test extra: the browser fixture skips, saying how to install it
    expect = None

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-output" / "console"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SLOW_MS = 120_000
"""A job or the first search (a model loads) may take this long on a busy 2-core machine."""

RESET_PASSWORD = (
    "To reset your password, open Settings, choose Security and click Reset password. A link "
    "to choose a new password is sent to your email address."
)
OPENING_HOURS = (
    "Our support desk is open Monday to Friday from 9 am to 6 pm; it can help you sign in to "
    "your account. On public holidays the desk is closed."
)


def _word_file(heading: str, paragraph: str) -> bytes:
    """A real .docx, which only the service can read (the browser sends it as it is)."""
    document = docx.Document()
    document.add_heading(heading, level=1)
    document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


UPLOADED = {
    "reset-password.txt": ("text/plain", RESET_PASSWORD.encode()),
    "opening-hours.docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _word_file("Opening hours", OPENING_HOURS),
    ),
    "empty.md": ("text/markdown", b""),
}
PASTED_ID = "refunds"
PASTED_TEXT = (  # every text scores above 0 for the test's query: the slider starts at 0
    "Refunds are paid back to the card used for the purchase within 5 business days. Your "
    "account page shows them."
)


# ------------------------------------------------------------------- the page, served


def test_the_page_is_served_at_the_root_with_a_strict_content_policy(api: TestClient) -> None:
    response = api.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert '<script type="module" src="/console/js/main.js">' in response.text


def test_every_console_file_is_served_with_its_type(api: TestClient) -> None:
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    files = [path for path in CONSOLE_DIR.rglob("*") if path.suffix in types]

    assert {path.name for path in files} >= {"main.js", "i18n.js", "console.css"}
    for path in files:
        response = api.get(f"/console/{path.relative_to(CONSOLE_DIR).as_posix()}")
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(types[path.suffix]), path
        assert response.content == path.read_bytes()


def test_the_page_and_its_modules_name_only_files_that_exist() -> None:
    html = (CONSOLE_DIR / "index.html").read_text(encoding="utf-8")
    for asset in re.findall(r'(?:src|href)="/console/([^"]+)"', html):
        assert (CONSOLE_DIR / asset).is_file(), asset
    for script in (CONSOLE_DIR / "js").glob("*.js"):
        for module in re.findall(r'from "\./([^"]+)"', script.read_text(encoding="utf-8")):
            assert (script.parent / module).is_file(), f"{script.name} imports {module}"


@pytest.mark.parametrize(
    "path",
    ["/console/", "/console/nope.js", "/console/%2e%2e/routes/console.py", "/console/..%2fapp.py"],
)
def test_nothing_outside_the_console_files_is_served(api: TestClient, path: str) -> None:
    response = api.get(path)

    assert response.status_code == 404
    assert "import" not in response.text


def test_the_console_loads_nothing_from_the_network_and_inserts_no_html() -> None:
    for path in CONSOLE_DIR.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        addresses = set(re.findall(r"https?://[^\s\"')]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not addresses, f"{path.name} names {addresses}"
        if path.suffix == ".js":
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
                assert sink not in text, f"{path.name} uses {sink}"


def test_every_message_the_console_shows_exists_in_both_languages() -> None:
    i18n = (CONSOLE_DIR / "js" / "i18n.js").read_text(encoding="utf-8")
    english, chinese = i18n.split("\n  zh: {\n")
    en_keys = set(re.findall(r'^    "([\w.]+)":', english, re.MULTILINE))
    zh_keys = set(re.findall(r'^    "([\w.]+)":', chinese, re.MULTILINE))
    used = set(re.findall(r'data-i18n(?:-[a-z-]+)?="([\w.]+)"', _console_text("*.html")))
    used |= set(re.findall(r'\bt\(\s*"([\w.]+)"', _console_text("js/*.js")))
    for template, values in {
        "job.kind.": ("ingest", "reindex"),
        "job.status.": ("queued", "running", "succeeded", "failed"),
        "calibration.shape.": ("queries", "pairs"),
        "calibration.": ("precision", "recall", "rejection"),
    }.items():
        used |= {template + value for value in values}

    assert len(en_keys) > 100
    assert en_keys == zh_keys, (
        f"only English: {en_keys - zh_keys}, only Chinese: {zh_keys - en_keys}"
    )
    assert used <= en_keys, f"missing: {used - en_keys}"


def _console_text(pattern: str) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in CONSOLE_DIR.glob(pattern))


# ------------------------------------------------------------------- routes the console needs


def test_a_collections_jobs_are_listed_newest_first(api: TestClient) -> None:
    assert api.post("/collections", json={"name": "faq"}).status_code == 201
    assert api.post("/collections", json={"name": "other"}).status_code == 201
    first = api.post("/collections/faq/documents", json={"documents": [_doc("a")]}).json()
    wait_for_job(api, first["id"])
    second = api.post("/collections/faq/documents", json={"documents": [_doc("b")]}).json()
    wait_for_job(api, second["id"])

    listed = api.get("/collections/faq/jobs").json()
    assert [job["id"] for job in listed["jobs"]] == [second["id"], first["id"]]
    assert listed["count"] == 2
    assert listed["jobs"][0]["status"] == "succeeded"
    assert listed["jobs"][0]["documents_done"] == 1
    assert [job["id"] for job in api.get("/collections/faq/jobs?limit=1").json()["jobs"]] == [
        second["id"]
    ]
    assert api.get("/collections/other/jobs").json() == {"jobs": [], "count": 0}

    missing = api.get("/collections/nope/jobs")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "collection 'nope' does not exist"}
    too_many = api.get("/collections/faq/jobs?limit=101")
    assert too_many.status_code == 422
    assert too_many.json()["detail"].startswith("query.limit: Input should be less than or equal")


def test_a_key_limited_to_other_collections_is_told_the_jobs_collection_does_not_exist(
    api: TestClient,
) -> None:
    assert api.post("/collections", json={"name": "faq"}).status_code == 201
    assert api.post("/collections", json={"name": "other"}).status_code == 201
    admin = api.post("/keys", json={"name": "admin", "scopes": ["admin"]}).json()["token"]
    as_admin = {"authorization": f"Bearer {admin}"}
    reader = {"name": "r", "scopes": ["read"], "collections": ["other"]}
    writer = {"name": "w", "scopes": ["write"], "collections": ["faq"]}
    tokens = {
        "admin": admin,
        "other-reader": api.post("/keys", json=reader, headers=as_admin).json()["token"],
        "faq-writer": api.post("/keys", json=writer, headers=as_admin).json()["token"],
    }

    def jobs(collection: str, token: str | None) -> tuple[int, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = api.get(f"/collections/{collection}/jobs", headers=headers)
        return response.status_code, response.json()

    assert jobs("faq", None)[0] == 401
    assert jobs("faq", tokens["other-reader"]) == (
        404,
        {"detail": "collection 'faq' does not exist"},
    )
    assert jobs("other", tokens["other-reader"])[0] == 200
    assert jobs("faq", tokens["faq-writer"])[0] == 200
    assert jobs("faq", tokens["admin"])[0] == 200


def test_similarity_explained_shows_each_text_as_embedded_and_scores_as_similarity_does(
    api: TestClient,
) -> None:
    a = "How do I reset my\u200b password？？"
    b = "  To reset your password,\topen   Settings.  "

    explained = api.post("/similarity/explain", json={"a": a, "b": b})

    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert body["a"] == "How do I reset my password"
    assert body["b"] == "To reset your password, open Settings."
    assert body["model"] == "all-MiniLM-L6-v2"
    assert body["collection"] is None
    scores = api.post("/similarity", json={"inputs": {"source_sentence": a, "sentences": [b]}})
    assert body["score"] == pytest.approx(scores.json()[0], abs=1e-6)


def test_similarity_explained_in_a_collection_applies_its_term_map(api: TestClient) -> None:
    created = api.post(
        "/collections", json={"name": "kb", "term_map": {"pw": "password"}, "threshold": 0.4}
    )
    assert created.status_code == 201

    body = api.post(
        "/similarity/explain",
        json={"a": "reset my pw!", "b": "Forgot your pw? Reset it.", "collection": "kb"},
    ).json()

    assert body["a"] == "reset my password"
    assert body["b"] == "Forgot your password? Reset it."
    assert body["collection"] == "kb"
    both = api.post(
        "/similarity/explain", json={"a": "x", "b": "y", "model": "m", "collection": "kb"}
    )
    assert both.status_code == 422
    assert both.json()["detail"] == "body: Value error, give a model or a collection, not both"
    missing = api.post("/similarity/explain", json={"a": "x", "b": "y", "collection": "nope"})
    assert missing.status_code == 404
    assert missing.json() == {"detail": "collection 'nope' does not exist"}
    blank = api.post("/similarity/explain", json={"a": "？！", "b": "y"})
    assert blank.status_code == 422
    assert blank.json()["detail"].startswith("a: nothing is left after cleaning")


def _doc(document_id: str) -> dict[str, str]:
    return {"id": document_id, "text": f"Document {document_id} tells how to reset a password."}


# ------------------------------------------------------------------- the console in Chromium


@dataclass
class Console:
    """A browser page on the live service, with what its console reported."""

    page: Any
    url: str
    problems: list[str] = field(default_factory=list)

    def open(self, page_name: str) -> None:
        self.page.goto(f"{self.url}/#{page_name}")
        expect(self.page.locator("body")).to_have_attribute("data-ready", "true")

    def go(self, page_name: str) -> None:
        self.page.locator(f'nav a[data-page-link="{page_name}"]').click()
        expect(self.page.locator(f"#page-{page_name}")).to_be_visible()

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def assert_clean(self, *, expected: tuple[str, ...] = ()) -> None:
        """No script error and no console error, apart from failed loads with `expected`
        status codes (Chromium logs every non-2xx answer the page asked for)."""
        unexpected = [
            problem
            for problem in self.problems
            if not any(f"status of {status}" in problem for status in expected)
        ]
        assert not unexpected, unexpected


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium (Debian's) for the module."""
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH: install it with `apt-get install chromium`")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason='Playwright is a test extra: pip install -e ".[test]"'
    )
    sync_api.expect.set_options(timeout=15_000)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def _console(browser: Any, url: str, *, locale: str = "en-US") -> Iterator[Console]:
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    console = Console(page=page, url=url)
    page.on("pageerror", lambda error: console.problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            console.problems.append(f"{message.type}: {message.text}")
            if message.type in ("error", "warning")
            else None
        ),
    )
    try:
        yield console
    finally:
        context.close()


@pytest.fixture
def console(browser: Any, live_url: str) -> Iterator[Console]:
    with _console(browser, live_url) as opened:
        yield opened


def test_create_upload_search_and_move_the_threshold(console: Console, live_url: str) -> None:
    _create_a_collection(console, "faq")
    _upload_files_and_text(console)
    _edit_the_term_map(console)
    _search_and_move_the_threshold(console)

    saved = live_get(f"{live_url}/collections/faq").json()["threshold"]
    assert f"{saved:.3f}" == console.page.locator("#search-collection-threshold").inner_text()
    console.assert_clean()


def _create_a_collection(console: Console, name: str) -> None:
    page = console.page
    console.open("collections")
    expect(page.locator("#collections-empty")).to_be_visible()

    page.locator("#collection-create summary").click()
    page.locator("#create-name").fill(name)
    page.locator("#create-form button[type=submit]").click()

    expect(page.locator(f'#collections-table tr[data-collection="{name}"]')).to_be_visible()
    expect(page.locator("[data-notice]:visible")).to_have_text(f"Collection {name} created.")
    console.screenshot("01-collections-created")


def _upload_files_and_text(console: Console) -> None:
    page = console.page
    console.go("upload")
    expect(page.locator("#upload-collection")).to_have_value("faq")

    page.locator("#upload-files").set_input_files(
        [
            {"name": name, "mimeType": kind, "buffer": content}
            for name, (kind, content) in UPLOADED.items()
        ]
    )
    expect(page.locator("#upload-list li[data-file]")).to_have_count(3)
    page.locator("#upload-text").fill(PASTED_TEXT)
    page.locator("#upload-text-id").fill(PASTED_ID)
    page.locator("#upload-form button[type=submit]").click()

    # The files' job (the empty one is left out, and said so), then the pasted text's.
    expect(page.locator('#upload-jobs [data-job-status="succeeded"]')).to_have_count(
        2, timeout=SLOW_MS
    )
    expect(page.locator("#upload-jobs .job-progress")).to_have_text(
        ["2 of 2 documents, 2 chunks", "1 of 1 documents, 1 chunks"]
    )
    expect(page.locator("#upload-list li.error")).to_have_text(["empty.md is empty; skipped."])
    console.screenshot("02-upload-job-succeeded")


def _edit_the_term_map(console: Console) -> None:
    page = console.page
    console.go("collections")
    expect(page.locator('tr[data-collection="faq"] td[data-field="documents"]')).to_have_text("3")
    jobs = page.locator("#collection-jobs [data-job-status]")
    expect(jobs).to_have_count(2)  # the upload's: its files, the pasted text

    page.locator("#term-map-add").click()
    page.locator("#term-map-rows input.term").fill("pw")
    page.locator("#term-map-rows input.replacement").fill("password")
    page.locator("#term-map-form button[type=submit]").click()

    expect(jobs).to_have_count(3)  # the re-index, newest first, followed until it ends
    expect(jobs.first).to_contain_text("Re-index")
    expect(page.locator('#collection-jobs [data-job-status="succeeded"]')).to_have_count(
        3, timeout=SLOW_MS
    )
    console.screenshot("03-collection-term-map-and-jobs")


def _search_and_move_the_threshold(console: Console) -> None:
    page = console.page
    console.go("search")
    page.locator("#search-query").fill("How do I change my pw?")
    page.locator("#search-form button[type=submit]").click()

    hits = page.locator("#search-hits > li")
    visible = page.locator("#search-hits > li:visible")
    expect(hits.first).to_have_attribute("data-document-id", "reset-password.txt", timeout=SLOW_MS)
    expect(page.locator("#search-embedded")).to_have_text("How do I change my password")
    expect(page.locator("#search-collection-threshold")).to_have_text("0.500")
    expect(hits).to_have_count(3)  # asked at the lowest threshold: every chunk comes back
    expect(page.locator("#search-hits .threshold-mark")).to_have_count(3)
    scores = sorted(float(s) for s in hits.evaluate_all("l => l.map(e => e.dataset.score)"))
    expect(visible).to_have_count(sum(score >= 0.5 for score in scores))

    slider = page.locator("#search-threshold")
    slider.fill(str(scores[0] - 0.001))  # under the lowest score: the hits under 0.5 appear
    expect(visible).to_have_count(3)
    console.screenshot("04-search-hits")

    between = (scores[-1] + scores[-2]) / 2
    slider.fill(str(between))
    expect(visible).to_have_count(1)
    expect(visible).to_have_attribute("data-document-id", "reset-password.txt")
    console.screenshot("05-search-threshold-raised")
    slider.fill("1")
    expect(visible).to_have_count(0)
    expect(page.locator("#search-count")).to_have_text("No hit at or above this threshold.")

    slider.fill(str(between))
    page.locator("#search-save-threshold").click()
    expect(page.locator("#search-collection-threshold")).to_have_text(f"{between:.3f}")
    expect(page.locator("#page-search [data-notice]")).to_have_text(
        f"The threshold of faq is now {between:.3f}."
    )


def test_a_search_filter_is_sent_and_a_malformed_one_is_named(
    console: Console, live_url: str
) -> None:
    with httpx.Client(base_url=live_url, timeout=LIVE_TIMEOUT_S) as client:
        client.post("/collections", json={"name": "teams"}).raise_for_status()
        documents = [
            {"id": team, "text": f"The {team} team resets passwords.", "metadata": {"team": team}}
            for team in ("accounts", "sales")
        ]
        job = client.post("/collections/teams/documents", json={"documents": documents})
        wait_for_job(client, job.json()["id"])
    page = console.page
    console.open("search")
    page.locator("#search-query").fill("Who resets passwords?")

    page.locator("#search-filter").fill('{"team": ')
    page.locator("#search-form button[type=submit]").click()
    expect(page.locator("#page-search [data-error]")).to_contain_text(
        "The filter is not a JSON object"
    )

    page.locator("#search-filter").fill('{"team": "sales"}')
    page.locator("#search-form button[type=submit]").click()
    expect(page.locator("#page-search [data-error]")).to_be_hidden()
    expect(page.locator("#search-hits > li")).to_have_count(1, timeout=SLOW_MS)
    expect(page.locator("#search-hits > li")).to_have_attribute("data-document-id", "sales")
    expect(page.locator("#search-hits .hit-metadata")).to_have_text('{"team":"sales"}')

    page.locator("#search-filter").fill('{"must": [{"key": "team", "range": "x"}]}')
    page.locator("#search-form button[type=submit]").click()
    expect(page.locator("#page-search [data-error]")).to_contain_text("filter")
    console.assert_clean(expected=("422",))


def test_a_search_for_whole_documents_lists_each_document_once(
    console: Console, live_url: str
) -> None:
    manual = " ".join(
        f"Step {n}: tighten bolt {n} of the bicycle frame to {n % 7 + 3} newton metres."
        for n in range(12)
    )
    with httpx.Client(base_url=live_url, timeout=LIVE_TIMEOUT_S) as client:
        client.post(
            "/collections",
            json={
                "name": "manuals",
                "mode": "dense",
                "threshold": 0.0,
                "chunking": {"max_tokens": 32},
            },
        ).raise_for_status()
        documents = [
            {"id": "bike", "text": manual},
            {"id": "refund", "text": "Refunds are paid back to the original card within days."},
        ]
        job = client.post("/collections/manuals/documents", json={"documents": documents})
        assert wait_for_job(client, job.json()["id"])["chunks_done"] > 3
    page = console.page
    console.open("search")
    page.locator("#search-collection").select_option("manuals")
    page.locator("#search-query").fill("How tight should the frame bolts be?")
    page.locator("#search-form button[type=submit]").click()
    passages = page.locator("#search-hits > li[data-document-id=bike]")
    expect(passages.first).to_be_visible(timeout=SLOW_MS)
    assert passages.count() > 1  # the manual's chunks, one hit each

    page.locator("#search-unit").select_option("document")
    page.locator("#search-form button[type=submit]").click()
    expect(page.locator("#search-unit-shown")).to_have_text(
        "whole documents, ranked by their mean chunk vector", timeout=SLOW_MS
    )
    hits = page.locator("#search-hits > li")
    expect(hits).to_have_count(2)
    expect(hits.first).to_have_attribute("data-document-id", "bike")
    expect(hits.first.locator(".hit-where")).to_have_text("whole document")
    console.screenshot("05-search-whole-documents")
    console.assert_clean()


class TestALargeIngest:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        """The suite's settings with parts of two documents: five make a job of three parts."""
        return settings.model_copy(update={"job_part_documents": 2})

    def test_a_job_split_into_parts_says_so(self, console: Console, live_url: str) -> None:
        with httpx.Client(base_url=live_url, timeout=LIVE_TIMEOUT_S) as client:
            client.post("/collections", json={"name": "bulk"}).raise_for_status()
            documents = [{"id": f"d{n}", "text": f"Answer number {n}."} for n in range(5)]
            job = client.post("/collections/bulk/documents", json={"documents": documents})
            assert wait_for_job(client, job.json()["id"])["parts"] == 3
        page = console.page
        console.open("collections")
        page.locator('tr[data-collection="bulk"] button').first.click()
        card = page.locator("#collection-jobs [data-job-status]")
        expect(card).to_have_count(1)  # the job the client follows, not its parts
        expect(card.locator(".job-parts")).to_have_text("split into 3 parts that the workers share")
        expect(card.locator(".job-progress")).to_have_text("5 of 5 documents, 5 chunks")
        console.assert_clean()


def test_the_language_switches_and_is_remembered(console: Console, live_url: str) -> None:
    live_post(f"{live_url}/collections", json={"name": "faq"}).raise_for_status()
    page = console.page
    console.open("collections")
    expect(page.locator("h1")).to_have_text("semsearch console")
    expect(page.locator("#language-toggle")).to_have_text("中文")

    page.locator("#language-toggle").click()
    expect(page.locator("h1")).to_have_text("semsearch 控制台")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#collections-heading")).to_have_text("集合")
    expect(page.locator('nav a[data-page-link="search"]')).to_have_text("搜索")
    expect(page.locator("#collection-detail-heading")).to_have_text("集合 faq")
    expect(page.locator("#language-toggle")).to_have_text("English")

    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("h1")).to_have_text("semsearch 控制台")
    console.screenshot("06-collections-zh")

    page.locator("#language-toggle").click()
    expect(page.locator("h1")).to_have_text("semsearch console")
    console.assert_clean()


def test_a_chinese_browser_opens_the_console_in_chinese(browser: Any, live_url: str) -> None:
    with _console(browser, live_url, locale="zh-CN") as console:
        console.open("similarity")
        expect(console.page.locator("#similarity-heading")).to_have_text("相似度测试")
        console.assert_clean()


def test_the_similarity_tester_shows_the_score_and_the_cleaned_texts(
    console: Console, live_url: str
) -> None:
    a = "How do I reset my\u200b password？？"
    b = "To reset your password,   open Settings."
    expected = live_post(f"{live_url}/similarity/explain", json={"a": a, "b": b})
    page = console.page
    console.open("similarity")

    page.locator("#similarity-a").fill(a)
    page.locator("#similarity-b").fill(b)
    page.locator("#similarity-form button[type=submit]").click()

    expect(page.locator("#similarity-score")).to_have_text(f"{expected.json()['score']:.3f}")
    expect(page.locator("#similarity-embedded-a")).to_have_text("How do I reset my password")
    expect(page.locator("#similarity-embedded-b")).to_have_text(
        "To reset your password, open Settings."
    )
    console.screenshot("07-similarity")

    page.locator("#similarity-a").fill("？？")
    page.locator("#similarity-form button[type=submit]").click()
    expect(page.locator("#page-similarity [data-error]")).to_have_text(
        re.compile(r"^a: nothing is left after cleaning")
    )
    console.assert_clean(expected=("422",))


def test_calibration_draws_the_curve_and_a_picked_point_sets_the_threshold(
    console: Console, live_url: str, tmp_path: Path
) -> None:
    live_post(f"{live_url}/collections", json={"name": "faq"}).raise_for_status()
    samples = tmp_path / "pairs.jsonl"
    samples.write_text("\n".join(json.dumps(pair) for pair in _pairs()) + "\n", encoding="utf-8")
    page = console.page
    console.open("calibration")

    page.locator("#calibration-file").set_input_files(str(samples))
    expect(page.locator("#calibration-loaded")).to_have_text(
        "24 samples: pairs of texts that match or not."
    )
    page.locator("#calibration-form button[type=submit]").click()
    points = page.locator("#calibration-curve svg circle.point.series-precision")
    expect(points.first).to_be_visible(timeout=SLOW_MS)
    expect(page.locator("#calibration-curve polyline.series-precision")).to_have_count(1)
    expect(page.locator("#calibration-curve polyline.series-recall")).to_have_count(1)
    console.screenshot("08-calibration-curve")

    bands = page.locator("#calibration-curve svg rect.pick-band")
    middle = bands.nth(bands.count() // 4)  # not the chosen threshold
    threshold = float(middle.get_attribute("data-threshold") or "nan")
    middle.click()
    expect(middle).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("ArrowLeft")  # the keyboard moves the pick along the curve
    expect(bands.nth(bands.count() // 4 - 1)).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("ArrowRight")
    expect(middle).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#calibration-picked")).to_contain_text(f"Threshold {threshold:.3f}")
    page.locator("#calibration-apply").click()
    expect(page.locator("#page-calibration [data-notice]")).to_have_text(
        f"The threshold of faq is now {threshold:.3f}."
    )
    saved = live_get(f"{live_url}/collections/faq").json()["threshold"]
    assert saved == pytest.approx(threshold)
    console.screenshot("09-calibration-threshold-set")
    console.assert_clean(expected=("404",))  # the collection had no calibration before


def test_a_service_that_needs_a_key_asks_for_one_and_remembers_it(
    console: Console, live_url: str
) -> None:
    created = live_post(f"{live_url}/keys", json={"name": "console", "scopes": ["admin"]})
    token = created.json()["token"]
    page = console.page
    console.open("collections")

    banner = page.locator("#auth-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("This service needs an API key")
    expect(page.locator("#api-key")).to_be_focused()
    console.screenshot("10-api-key-required")

    page.locator("#api-key").fill("ssk_000000000000_wrong")
    page.locator("#key-form button[type=submit]").click()
    expect(banner).to_contain_text("The service refused the key: the API key is unknown or revoked")

    page.locator("#api-key").fill(token)
    page.locator("#key-form button[type=submit]").click()
    expect(banner).to_be_hidden()
    page.locator("#collection-create summary").click()
    page.locator("#create-name").fill("keyed")
    page.locator("#create-form button[type=submit]").click()
    expect(page.locator('#collections-table tr[data-collection="keyed"]')).to_be_visible()

    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#api-key")).to_have_value(token)
    expect(page.locator('#collections-table tr[data-collection="keyed"]')).to_be_visible()
    expect(banner).to_be_hidden()
    console.assert_clean(expected=("401",))


SAMPLE_FILES = {
    "queries.csv": "\ufeffQuery, Relevant\r\n"
    '"Where, exactly, is my parcel?",track | delivery\r\n'
    "What is the weather like?,\r\n"
    '"He said ""reset"" twice",reset-password.txt\r\n',
    "pairs.csv": 'a,b,match\nreset password,"change a\nforgotten password",yes\n\n'
    "opening hours,refunds,0\nrefund,money back,TRUE\n",
    "queries.jsonl": '{"query": "reset my password", "relevant": ["reset-password.txt"]}\n\n'
    '{"query": "weather", "relevant": []}\n',
    "pairs.jsonl": '{"a": "x", "b": "y", "match": false}\n',
}


def test_the_console_reads_sample_files_as_the_cli_does(console: Console, tmp_path: Path) -> None:
    """The same files give the same samples in the browser as in api/samples.py, and a
    wrong line is named by both."""
    console.open("calibration")
    bad = {"bad.csv": "a,b,match\nx,y,1\nx,y,maybe\n", "bad.jsonl": '{"a": "x"}\n[1]\n'}
    for name, text in (SAMPLE_FILES | bad).items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8", newline="")
        in_browser = console.page.evaluate(
            """async ([name, text]) => {
                const { parseSamples } = await import("/console/js/samples.js");
                try { return parseSamples(name, text); }
                catch (error) { return { line: error.line, problem: error.problem }; }
            }""",
            [name, text],
        )
        expected: dict[str, Any]
        try:
            samples = read_samples(path)
            expected = {
                "shape": "queries" if "query" in samples[0].model_fields_set else "pairs",
                "samples": [sample.model_dump() for sample in samples],
            }
        except ValueError as exc:  # "path:line: problem"
            expected = {"line": int(str(exc).split(":")[1])}
        if "line" in expected:
            assert in_browser["line"] == expected["line"], (name, in_browser)
        else:
            assert in_browser == expected, name
    console.assert_clean()


def _pairs() -> list[dict[str, object]]:
    """12 paraphrases and 12 unrelated pairs: enough for a curve (20 samples at least)."""
    questions = [
        ("How do I reset my password?", "Steps to change a forgotten password"),
        ("When is the support desk open?", "Opening hours of customer support"),
        ("How long does a refund take?", "Time until my money is paid back"),
        ("Can I change my delivery address?", "Update the shipping address of an order"),
        ("How do I delete my account?", "Close and remove my user account"),
        ("Is there a student discount?", "Reduced prices for students"),
        ("My card payment was declined", "The bank refused my card transaction"),
        ("Where is my parcel?", "Track the delivery of my package"),
        ("How do I cancel my subscription?", "Stop the monthly plan from renewing"),
        ("Can I pay with PayPal?", "Is PayPal accepted as a payment method"),
        ("The app crashes on start", "Application closes right after opening"),
        ("How do I contact an agent?", "Talk to a person in customer service"),
    ]
    pairs: list[dict[str, object]] = [{"a": a, "b": b, "match": True} for a, b in questions]
    for index, (a, _) in enumerate(questions):
        unrelated = questions[(index + 5) % len(questions)][1]
        pairs.append({"a": a, "b": unrelated, "match": False})
    return pairs
