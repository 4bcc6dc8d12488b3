"""Files into documents: encodings, markup, PDF, Word, bulk rows, failures, folders, uploads."""

from __future__ import annotations

import io
import json
from pathlib import Path

import docx
import pytest
from fastapi.testclient import TestClient
from fpdf import FPDF

from api.files import read_files
from ingest.files.base import RowFields, UnreadableFile
from ingest.files.decode import decode_text
from ingest.files.reader import read_file
from ingest.files.walk import collect_files
from retrieval.limits import InputLimits
from tests.conftest import wait_for_job

CHINESE = "退款会在七个工作日内退回原支付账户。如有疑问请联系客服。"


def pdf_bytes(*pages: str, title: str | None = None) -> bytes:
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def docx_bytes(*paragraphs: str, title: str | None = None) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "plan"
    table.rows[0].cells[1].text = "premium"
    if title:
        document.core_properties.title = title
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "gbk", "gb18030"])
def test_text_in_common_encodings_is_decoded_without_being_named(encoding: str) -> None:
    assert decode_text(CHINESE.encode(encoding)) == CHINESE


def test_a_short_gbk_text_reads_as_chinese_not_korean() -> None:
    # Its bytes are valid cp949 as well; a tie goes to the Chinese reading.
    assert decode_text("CTP保证金是什么".encode("gbk")) == "CTP保证金是什么"


@pytest.mark.parametrize(
    "data", [bytes(range(256)) * 8, b"\x89PNG\r\n\x1a\n" + bytes(500), b"text\x00with NUL"]
)
def test_binary_data_named_txt_is_refused(data: bytes) -> None:
    with pytest.raises(UnreadableFile, match="not text"):
        read_file("image.txt", data)


def test_markdown_is_indexed_as_text_without_markup() -> None:
    source = (
        "# Refund policy\n\nYou can ask for a **refund** within [30 days](https://x.test).\n\n"
        "* by mail\n* by phone\n\n```\ncode stays\n```\n\n<div>raw html</div>\n"
    )
    (document,) = read_file("guide/refunds.md", source.encode())
    assert document.id == "guide/refunds.md"
    assert document.title == "Refund policy"
    assert "You can ask for a refund within 30 days." in document.text
    assert "by mail\nby phone" in document.text
    assert "code stays" in document.text
    for markup in ("**", "](", "#", "```", "<div>"):
        assert markup not in document.text


def test_html_keeps_title_and_headings_and_drops_scripts_styles_and_navigation() -> None:
    page = (
        "<html><head><title>Refunds</title><style>.x{color:red}</style>"
        "<script>var tracking = 1;</script></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/about'>About us</a></nav>"
        "<h1>Refund policy</h1><p>You can ask for a refund within 30 days of purchase.</p>"
        f"<h2>退款时间</h2><p>{CHINESE}</p><footer>Copyright 2026</footer></body></html>"
    )
    (document,) = read_file("refunds.html", page.encode("gb18030"))
    assert document.title in ("Refunds", "Refund policy")
    assert "Refund policy" in document.text
    assert "退款时间" in document.text
    assert CHINESE in document.text
    for dropped in ("tracking", "color:red", "About us", "Copyright"):
        assert dropped not in document.text


def test_pdf_text_layer_pages_and_title() -> None:
    data = pdf_bytes(
        "Margin calls happen when equity falls.", "Second page text.", title="Margin guide"
    )
    (document,) = read_file("margin.pdf", data)
    assert document.title == "Margin guide"
    assert "Margin calls happen when equity falls." in document.text
    assert "Second page text." in document.text


def test_docx_paragraphs_tables_and_title() -> None:
    (document,) = read_file("plans.docx", docx_bytes("First paragraph.", CHINESE, title="Plans"))
    assert document.title == "Plans"
    assert "First paragraph." in document.text
    assert CHINESE in document.text
    assert "plan | premium" in document.text


def test_csv_rows_are_documents_with_named_columns() -> None:
    data = "qid,question,answer,lang\n7,Reset password?,Click forgot password.,en\n8,,,zh\n"
    documents = read_file(
        "faq.csv",
        data.encode(),
        fields=RowFields(id="qid", title="question", text="answer"),
    )
    assert len(documents) == 1  # the row without text is skipped
    (row,) = documents
    assert (row.id, row.title, row.text) == ("7", "Reset password?", "Click forgot password.")
    assert row.metadata == {"lang": "en"}
    assert row.source == "faq.csv"


def test_a_quoted_csv_cell_keeps_its_line_breaks() -> None:
    data = 'id,text\r\n1,"First line.\nSecond line."\r\n2,plain\r\n'
    documents = read_file("faq.csv", data.encode(), fields=RowFields())
    assert [(row.id, row.text) for row in documents] == [
        ("1", "First line.\nSecond line."),
        ("2", "plain"),
    ]


def test_jsonl_rows_default_fields_and_ids_from_the_line() -> None:
    lines = [
        {"id": "a", "text": "first", "title": "A", "tags": ["x"]},
        {"text": "second", "team": "ops"},
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode("utf-16")
    first, second = read_file("rows.jsonl", data)
    assert (first.id, first.title, first.metadata) == ("a", "A", {"tags": ["x"]})
    assert (second.id, second.metadata) == ("rows.jsonl#2", {"team": "ops"})


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("broken.pdf", b"%PDF-1.4 not really a pdf", "not a readable PDF"),
        ("broken.docx", b"PK\x03\x04 not a zip", "not a readable .docx"),
        ("empty.md", b"  \n", "empty"),
        ("archive.zip", b"PK\x03\x04", "unsupported file type '.zip'"),
        ("noext", b"hello", "unsupported file type '(none)'"),
        ("rows.csv", b"question,answer\nq,a\n", "no column 'text'"),
        ("rows.jsonl", b'{"text": "ok"}\n[1, 2]\n', "line 2 is not a JSON object"),
    ],
)
def test_unreadable_files_say_why(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableFile, match=reason.replace("(", r"\(").replace(")", r"\)")):
        read_file(name, data)


def test_a_file_over_the_size_limit_is_refused_naming_the_setting() -> None:
    with pytest.raises(UnreadableFile, match="SEMSEARCH_LIMITS__MAX_FILE_BYTES"):
        read_file("big.txt", b"x" * 101, max_bytes=100)


def test_one_bad_file_fails_alone_and_ids_collide_only_within_one_read() -> None:
    read = read_files(
        [
            ("a/README.md", b"# A\n\nalpha"),
            ("b/README.md", b"# B\n\nbeta"),
            ("bad.pdf", b"%PDF-1.4 garbage"),
            ("rows.csv", b"id,text\na/README.md,clash\n../up,bad id\nok,fine\n"),
        ],
        limits=InputLimits(),
        fields=RowFields(),
    )
    assert read.files == 4
    assert [document.id for document in read.documents] == ["a/README.md", "b/README.md", "ok"]
    reasons = {failure.name: failure.reason for failure in read.failures}
    assert reasons["bad.pdf"].startswith("not a readable PDF")
    assert "already taken by a/README.md" in reasons["rows.csv (a/README.md)"]
    assert "'..'" in reasons["rows.csv (../up)"]


def test_folders_are_walked_with_relative_ids_globs_and_hidden_files_skipped(
    tmp_path: Path,
) -> None:
    for relative in ("a/README.md", "b/README.md", "b/deep/c.txt", "b/img.png", ".git/x.md"):
        path = tmp_path / "kb" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("text")
    found = collect_files([tmp_path / "kb"])
    assert [file.name for file in found] == ["a/README.md", "b/README.md", "b/deep/c.txt"]
    only_md = collect_files([tmp_path / "kb"], include=["*.md"], exclude=["b/*"])
    assert [file.name for file in only_md] == ["a/README.md"]


def test_upload_indexes_what_it_can_and_lists_what_it_cannot(api: TestClient) -> None:
    assert api.post("/collections", json={"name": "kb"}).status_code == 201
    response = api.post(
        "/collections/kb/files",
        files=[
            ("files", ("a/README.md", b"# Alpha\n\nRefunds take seven days.", "text/markdown")),
            ("files", ("b/README.md", b"# Beta\n\nPasswords reset by mail.", "text/markdown")),
            ("files", ("margin.pdf", pdf_bytes("Margin calls happen when equity falls."), "")),
            ("files", ("broken.pdf", b"%PDF garbage", "application/pdf")),
            ("files", ("faq.csv", b"id,text,team\nq1,Invoices are monthly.,billing\n", "")),
        ],
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["files"], body["documents"]) == (5, 4)
    assert [failure["name"] for failure in body["failed"]] == ["broken.pdf"]
    for job in body["jobs"]:
        assert wait_for_job(api, job["id"])["status"] == "succeeded"
    listed = api.get("/collections/kb/documents").json()
    assert sorted(doc["id"] for doc in listed["documents"]) == [
        "a/README.md",
        "b/README.md",
        "margin.pdf",
        "q1",
    ]
    assert api.get("/collections/kb/documents/q1").json()["metadata"] == {"team": "billing"}
    hits = api.post("/collections/kb/search", json={"query": "margin call equity"}).json()["hits"]
    assert hits
    assert hits[0]["document_id"] == "margin.pdf"

    again = api.post(
        "/collections/kb/files",
        files=[("files", ("a/README.md", b"# Alpha\n\nRefunds take seven days.", ""))],
    ).json()
    assert again["jobs"][0]["documents_unchanged"] == 1


def test_upload_of_nothing_readable_is_422_with_reasons_and_stores_nothing(
    api: TestClient,
) -> None:
    assert api.post("/collections", json={"name": "kb"}).status_code == 201
    response = api.post(
        "/collections/kb/files",
        files=[("files", ("x.zip", b"PK", "")), ("files", ("empty.txt", b"", ""))],
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "x.zip: unsupported file type '.zip'" in detail
    assert "empty.txt: the file is empty" in detail
    assert api.get("/collections/kb/documents").json()["count"] == 0
    missing = api.post("/collections/nope/files", files=[("files", ("a.txt", b"hi", ""))])
    assert missing.status_code == 404
