"""The ONNX Runtime engine: an export equal to torch's model, an int8 model that ranks alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from retrieval.config import Settings
from retrieval.errors import ConfigurationError
from retrieval.models.base import EmbeddingModel, TextRole
from retrieval.models.onnx_engine import OnnxEngine, exported_model, folder_digest
from retrieval.models.registry import BUNDLED_MODELS, MINILM, MINILM_INT8, ModelRegistry
from retrieval.models.sentence_transformers import bundled_minilm_path
from tests.conftest import wait_for_job

QUESTIONS = [
    "how do I reset my password",
    "where is my parcel",
    "can I pay with a credit card",
    "the app crashes when I open it",
    "how long does a refund take",
    "cancel my subscription",
]
ANSWERS = [
    "To choose a new password, open Settings, then Security, and follow the reset link.",
    "Track your delivery with the number in the shipping e-mail; parcels take 3-5 days.",
    "We accept Visa, Mastercard and American Express as well as bank transfers.",
    "If the application closes on start, reinstall it and update your phone's system.",
    "Money is returned to your account within 5 to 10 working days after we get the item.",
    "You can end your plan at any time from the Billing page; it stops at the period's end.",
]
LONG = " ".join(["a sentence about refunds, deliveries and passwords."] * 120)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


def _engine(cache: Path, *, quantized: bool) -> OnnxEngine:
    return OnnxEngine.load(
        bundled_minilm_path(),
        cache_dir=cache,
        quantized=quantized,
        threads=2,
        batch_size=4,
        dimension=MINILM.dimension,
        max_length=MINILM.max_tokens + 2,
    )


def test_the_fp32_export_embeds_as_the_torch_model_does(
    onnx_cache: Path, minilm: EmbeddingModel
) -> None:
    """Texts of many lengths, one past the token window, in batches of 4 sorted by length."""
    texts = [*QUESTIONS, *ANSWERS, LONG, "ok"]
    exported = _engine(onnx_cache, quantized=False).encode(texts, role=TextRole.PASSAGE)
    reference = minilm.encode(texts, role=TextRole.PASSAGE)
    assert exported.shape == reference.shape
    assert np.allclose(np.linalg.norm(exported, axis=1), 1.0, atol=1e-5)
    assert float((exported * reference).sum(axis=1).min()) > 0.9999


def test_the_int8_model_ranks_as_the_torch_model(onnx_cache: Path, minilm: EmbeddingModel) -> None:
    engine = _engine(onnx_cache, quantized=True)
    int8 = (
        engine.encode(QUESTIONS, role=TextRole.QUERY)
        @ engine.encode(ANSWERS, role=TextRole.PASSAGE).T
    )
    torch = (
        minilm.encode(QUESTIONS, role=TextRole.QUERY)
        @ minilm.encode(ANSWERS, role=TextRole.PASSAGE).T
    )
    assert list(int8.argmax(axis=1)) == list(torch.argmax(axis=1)) == list(range(len(QUESTIONS)))
    assert float(np.abs(int8 - torch).max()) < 0.05  # scores: 0.03 apart at most here
    assert engine.encode([], role=TextRole.QUERY).shape == (0, MINILM.dimension)


def test_an_export_is_made_once_per_model_folder(onnx_cache: Path, tmp_path: Path) -> None:
    first = exported_model(bundled_minilm_path(), onnx_cache, quantized=True)
    made = first.stat().st_mtime_ns
    assert exported_model(bundled_minilm_path(), onnx_cache, quantized=True) == first
    assert first.stat().st_mtime_ns == made
    assert not list(first.parent.glob("*.partial"))

    changed = tmp_path / "model"
    shutil.copytree(bundled_minilm_path(), changed)
    config = json.loads((changed / "sentence_bert_config.json").read_text("utf-8"))
    (changed / "sentence_bert_config.json").write_text(
        json.dumps({**config, "max_seq_length": 128}), "utf-8"
    )
    assert folder_digest(changed) != folder_digest(bundled_minilm_path())


def test_a_folder_with_modules_the_engine_cannot_run_is_refused(
    onnx_cache: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "dense"
    shutil.copytree(bundled_minilm_path(), folder)
    modules = json.loads((folder / "modules.json").read_text("utf-8"))
    modules.append(
        {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    )
    (folder / "modules.json").write_text(json.dumps(modules), "utf-8")
    with pytest.raises(ConfigurationError, match="Dense"):
        OnnxEngine.load(
            folder,
            cache_dir=onnx_cache,
            quantized=True,
            threads=1,
            batch_size=4,
            dimension=384,
            max_length=256,
        )


def test_a_collection_on_the_int8_model_finds_its_documents(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    models = ModelRegistry(
        BUNDLED_MODELS, default=MINILM.name, onnx_cache_dir=settings.data_dir / "onnx"
    )
    with TestClient(create_app(settings, models=models)) as api:
        created = api.post(
            "/collections",
            json={"name": "faq", "model": "all-minilm:int8", "mode": "dense", "threshold": 0.3},
        )
        assert created.status_code == 201, created.text
        assert created.json()["model"] == MINILM_INT8.name
        documents = [{"id": f"a{index}", "text": text} for index, text in enumerate(ANSWERS)]
        job = api.post("/collections/faq/documents", json={"documents": documents})
        assert wait_for_job(api, job.json()["id"])["status"] == "succeeded"
        for index, question in enumerate(QUESTIONS):
            found = api.post("/collections/faq/search", json={"query": question}).json()
            assert found["model"] == MINILM_INT8.name
            assert found["hits"][0]["document_id"] == f"a{index}", question
    assert list((settings.data_dir / "onnx").glob("*/model.int8.onnx"))
