"""`semsearch ingest`: folders of mixed files, into the embedded store or a running service."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from api.cli import cli
from retrieval.config import Settings
from retrieval.services import Services

GBK_TEXT = "退款会在七个工作日内退回原支付账户。如有疑问请联系客服。"


def knowledge_base(root: Path) -> Path:
    """A folder as teams have them: same names in two folders, GBK text, rows, a bad PDF."""
    files = {
        "a/README.md": b"# Alpha\n\nRefunds take seven days.",
        "b/README.md": b"# Beta\n\nPasswords are reset by mail.",
        "zh/退款.txt": GBK_TEXT.encode("gbk"),
        "faq.csv": b"id,text,team\nq1,Invoices are sent monthly.,billing\n",
        "broken.pdf": b"%PDF-1.4 garbage",
        "notes/.hidden.md": b"# hidden",
        "image.png": b"\x89PNG",
    }
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def stored_documents(data_dir: Path, collection: str) -> dict[str, str]:
    services = Services.open(Settings(data_dir=data_dir))
    try:
        documents, _ = services.catalog.list_documents(collection, offset=0, limit=100)
        return {document.id: document.status.value for document in documents}
    finally:
        services.close()


def test_a_folder_goes_into_the_embedded_store_and_a_bad_file_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(tmp_path / "data"))
    folder = knowledge_base(tmp_path / "kb")
    runner = CliRunner()

    result = runner.invoke(cli, ["ingest", "kb", str(folder), "--create"])
    assert result.exit_code == 1, result.output  # broken.pdf failed; the rest went in
    assert "created the collection kb" in result.output
    assert "broken.pdf" in result.output
    assert "not a readable PDF" in result.output
    assert "Traceback" not in result.output
    assert stored_documents(tmp_path / "data", "kb") == {
        "a/README.md": "indexed",
        "b/README.md": "indexed",
        "zh/退款.txt": "indexed",
        "q1": "indexed",
    }

    again = runner.invoke(cli, ["ingest", "kb", str(folder), "--exclude", "*.pdf"])
    assert again.exit_code == 0, again.output
    unchanged_row = next(line for line in again.output.splitlines() if "│" in line and "4" in line)
    assert unchanged_row.split("│")[2].strip() == "4"  # indexed 0, unchanged 4


def test_a_missing_collection_without_create_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "a.txt").write_text("hello")
    result = CliRunner().invoke(cli, ["ingest", "nope", str(tmp_path / "a.txt")])
    assert result.exit_code != 0
    assert "nope" in result.output
    assert "Traceback" not in result.output


def test_files_go_to_a_running_service_with_url(live_url: str, tmp_path: Path) -> None:
    folder = knowledge_base(tmp_path / "kb")
    with httpx.Client(base_url=live_url) as http:
        assert http.post("/collections", json={"name": "kb"}).status_code == 201
        result = CliRunner().invoke(
            cli, ["ingest", "kb", str(folder), "--url", live_url, "--include", "*.md"]
        )
        assert result.exit_code == 0, result.output
        listed = http.get("/collections/kb/documents").json()
    assert sorted(document["id"] for document in listed["documents"]) == [
        "a/README.md",
        "b/README.md",
    ]


def test_the_embedded_store_of_a_running_service_points_to_url(
    live_url: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(settings.data_dir))
    (tmp_path / "a.txt").write_text("hello")
    result = CliRunner().invoke(cli, ["ingest", "kb", str(tmp_path / "a.txt")])
    assert result.exit_code == 2
    assert "in use by process" in result.output
    assert "--url" in result.output
