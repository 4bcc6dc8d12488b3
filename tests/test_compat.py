"""The OpenAI- and Ollama-compatible endpoints, through the real openai SDK and Ollama's own
documented request bodies, against the real app and the real models."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from openai import OpenAI

from api.app import create_app
from retrieval.config import Settings
from retrieval.limits import InputLimits
from retrieval.models.base import EmbeddingModel
from retrieval.models.registry import MINILM, MULTILINGUAL_E5_SMALL, ModelRegistry
from tests.conftest import live_get, live_post

SKY = "Why is the sky blue?"
GRASS = "Why is the grass green?"
LLAMAS = "Here is an article about llamas..."
MINILM_NAMES = (
    "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
    "all-minilm",
    "all-minilm:l6-v2",
    "all-minilm:latest",
)
CURL_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
"""What `curl -d` declares, as in every example of Ollama's API documentation."""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_key(url: str, token: str | None, **body: Any) -> str:
    response = live_post(f"{url}/keys", json=body, headers=bearer(token) if token else {})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def cosine(a: Sequence[float] | NDArray[np.float32], b: Sequence[float]) -> float:
    left, right = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(left @ right / (np.linalg.norm(left) * np.linalg.norm(right)))


def assert_same_vector(got: Sequence[float], expected: NDArray[np.float32]) -> None:
    assert len(got) == len(expected)
    assert cosine(got, expected.tolist()) > 0.9999
    assert np.allclose(got, expected, atol=1e-5)


@pytest.fixture
def keys(live_url: str) -> dict[str, str]:
    """A keyed service: an admin key (the first key ends open access), a read key limited
    to one collection, and a write-only key."""
    assert live_post(f"{live_url}/collections", json={"name": "kb"}).status_code == 201
    admin = make_key(live_url, None, name="root", scopes=["admin"])
    return {
        "admin": admin,
        "read_kb": make_key(live_url, admin, name="bot", scopes=["read"], collections=["kb"]),
        "write": make_key(live_url, admin, name="loader", scopes=["write"]),
    }


@pytest.fixture
def sdk(live_url: str, keys: dict[str, str]) -> Iterator[OpenAI]:
    """The openai SDK with its defaults, a read-only key limited to one collection as its
    API key (the SDK sends it as `Authorization: Bearer`)."""
    with OpenAI(base_url=f"{live_url}/v1", api_key=keys["read_kb"]) as client:
        yield client


@pytest.fixture
def e5(models: ModelRegistry) -> EmbeddingModel:
    return models.get(MULTILINGUAL_E5_SMALL.name)


def test_a_tutorials_placeholder_key_works_on_an_open_service(
    live_url: str, minilm: EmbeddingModel
) -> None:
    """The SDK refuses to start without a key, so tutorials pass any string: while the service
    has no key it runs open and a presented token changes nothing."""
    for placeholder in ("sk-anything", "ollama"):
        with OpenAI(base_url=f"{live_url}/v1", api_key=placeholder) as client:
            answer = client.embeddings.create(model="all-minilm", input=SKY)
        assert_same_vector(answer.data[0].embedding, minilm.encode_queries([SKY])[0])


def test_the_sdk_with_its_default_base64_gets_the_models_own_vectors(
    sdk: OpenAI, live_url: str, keys: dict[str, str], minilm: EmbeddingModel
) -> None:
    answer = sdk.embeddings.create(model="all-MiniLM-L6-v2", input=[SKY, GRASS])
    assert answer.object == "list"
    assert answer.model == "all-MiniLM-L6-v2"
    assert [item.index for item in answer.data] == [0, 1]
    assert all(item.object == "embedding" for item in answer.data)
    expected = minilm.encode_queries([SKY, GRASS])
    for item, vector in zip(answer.data, expected, strict=True):
        assert_same_vector(item.embedding, vector)

    # On the wire the SDK asked for base64: little-endian float32 bytes, the same numbers
    # as the float answer.
    body = {"model": "all-MiniLM-L6-v2", "input": [SKY, GRASS]}
    wire = live_post(
        f"{live_url}/v1/embeddings",
        json={**body, "encoding_format": "base64"},
        headers=bearer(keys["read_kb"]),
    ).json()
    floats = live_post(
        f"{live_url}/v1/embeddings",
        json={**body, "encoding_format": "float"},
        headers=bearer(keys["read_kb"]),
    ).json()
    for encoded, plain, decoded in zip(wire["data"], floats["data"], answer.data, strict=True):
        raw = base64.b64decode(encoded["embedding"])
        assert len(raw) == 4 * MINILM.dimension
        assert np.frombuffer(raw, dtype="<f4").tolist() == plain["embedding"]
        assert decoded.embedding == plain["embedding"]
        assert abs(np.linalg.norm(plain["embedding"]) - 1.0) < 1e-5
    assert wire["usage"] == floats["usage"] == answer.usage.model_dump()


def test_usage_counts_the_models_own_tokens_consistently(
    sdk: OpenAI, live_url: str, keys: dict[str, str], minilm: EmbeddingModel, e5: EmbeddingModel
) -> None:
    both = sdk.embeddings.create(model="all-minilm", input=[SKY, GRASS]).usage
    each = [sdk.embeddings.create(model="all-minilm", input=text).usage for text in (SKY, GRASS)]
    assert both.prompt_tokens == both.total_tokens > 0
    assert both.prompt_tokens == sum(usage.prompt_tokens for usage in each)
    assert [usage.prompt_tokens for usage in each] == [
        minilm.tokenizer.count(SKY),
        minilm.tokenizer.count(GRASS),
    ]
    ollama = live_post(
        f"{live_url}/api/embed",
        json={"model": "all-minilm", "input": [SKY, GRASS]},
        headers=bearer(keys["read_kb"]),
    ).json()
    assert ollama["prompt_eval_count"] == both.prompt_tokens

    # E5's query prefix, added to a plain text, is read by the model and counted.
    e5_usage = sdk.embeddings.create(model="multilingual-e5-small", input=SKY).usage
    assert e5_usage.prompt_tokens == e5.tokenizer.count(f"query: {SKY}")
    assert e5_usage.prompt_tokens > e5.tokenizer.count(SKY)


def test_e5_embeds_plain_text_as_a_query_and_prefixed_text_as_given(
    sdk: OpenAI, e5: EmbeddingModel
) -> None:
    text = "退款多久到账"
    answer = sdk.embeddings.create(
        model="intfloat/multilingual-e5-small",
        input=[text, f"query: {text}", f"passage: {text}"],
    )
    plain, as_query, as_passage = (item.embedding for item in answer.data)
    assert answer.model == "multilingual-e5-small"
    query_vector = e5.encode_queries([text])[0]
    passage_vector = e5.encode_passages([text])[0]
    assert_same_vector(plain, query_vector)
    assert_same_vector(as_query, query_vector)
    assert_same_vector(as_passage, passage_vector)
    # The roles differ for this model, so the test above tells them apart.
    assert cosine(query_vector, passage_vector.tolist()) < 0.999


def test_every_name_of_a_model_gives_its_vectors_and_an_unknown_one_is_404(
    sdk: OpenAI, live_url: str, keys: dict[str, str]
) -> None:
    vectors = [sdk.embeddings.create(model=name, input=SKY) for name in MINILM_NAMES]
    assert {answer.model for answer in vectors} == {"all-MiniLM-L6-v2"}
    assert all(answer.data[0].embedding == vectors[0].data[0].embedding for answer in vectors)

    with pytest.raises(openai.NotFoundError) as refused:
        sdk.embeddings.create(model="text-embedding-3-small", input=SKY)
    assert refused.value.status_code == 404
    assert refused.value.code == "model_not_found"
    assert "'text-embedding-3-small' not found" in refused.value.message
    assert "available models: all-MiniLM-L6-v2, multilingual-e5-small" in refused.value.message

    ollama = live_post(
        f"{live_url}/api/embed",
        json={"model": "nomic-embed-text", "input": SKY},
        headers=bearer(keys["read_kb"]),
    )
    assert ollama.status_code == 404
    assert set(ollama.json()) == {"error"}
    assert "available models: all-MiniLM-L6-v2, multilingual-e5-small" in ollama.json()["error"]


def test_models_are_listed_in_openais_shape(sdk: OpenAI) -> None:
    listed = sdk.models.list()
    assert [model.id for model in listed.data] == [
        "all-MiniLM-L6-v2",
        "multilingual-e5-small",
        "all-MiniLM-L6-v2-int8",
    ]
    assert all(model.object == "model" for model in listed.data)
    assert sdk.models.retrieve("all-minilm:l6-v2").id == "all-MiniLM-L6-v2"
    assert sdk.models.retrieve("intfloat/multilingual-e5-small").id == "multilingual-e5-small"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("gpt-4o")


def test_token_ids_and_a_foreign_dimension_are_refused_saying_why(sdk: OpenAI) -> None:
    for token_ids in ([1820, 4062, 374], [[1820, 4062], [374]]):
        with pytest.raises(openai.UnprocessableEntityError) as refused:
            sdk.embeddings.create(model="all-minilm", input=token_ids)
        assert refused.value.status_code == 422
        assert "this service embeds text" in refused.value.message
        assert refused.value.param == "input"

    same = sdk.embeddings.create(model="all-minilm", input=SKY, dimensions=384)
    assert len(same.data[0].embedding) == 384
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        sdk.embeddings.create(model="all-minilm", input=SKY, dimensions=256)
    assert "all-MiniLM-L6-v2 makes 384-dimensional embeddings" in refused.value.message
    assert refused.value.param == "dimensions"


def test_a_text_over_the_models_window_is_refused_or_cut_as_asked(
    sdk: OpenAI, live_url: str, keys: dict[str, str], minilm: EmbeddingModel
) -> None:
    long_text = "sky " * 400
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.embeddings.create(model="all-minilm", input=[SKY, long_text])
    assert "input.1: 400 tokens, more than the 254 tokens all-MiniLM-L6-v2 reads" in str(
        refused.value.message
    )
    assert long_text not in str(refused.value.body)

    url, headers = f"{live_url}/api/embed", bearer(keys["read_kb"])
    kept = live_post(
        url, json={"model": "all-minilm", "input": long_text, "truncate": False}, headers=headers
    )
    assert kept.status_code == 400
    assert set(kept.json()) == {"error"}
    assert "400 tokens, more than the 254 tokens" in kept.json()["error"]

    cut = live_post(url, json={"model": "all-minilm", "input": long_text}, headers=headers)
    assert cut.status_code == 200
    assert cut.json()["prompt_eval_count"] == MINILM.max_tokens
    # sentence-transformers cuts at the same window: the model's own vector of the text.
    assert_same_vector(cut.json()["embeddings"][0], minilm.encode_queries([long_text])[0])


def test_ollamas_documented_requests_work_as_curl_sends_them(
    live_url: str, minilm: EmbeddingModel
) -> None:
    """The request bodies of Ollama's API documentation, declared as a form like `curl -d`;
    an open service (no key made yet) needs no key."""
    one = live_post(
        f"{live_url}/api/embed",
        content='{\n  "model": "all-minilm",\n  "input": "Why is the sky blue?"\n}',
        headers=CURL_FORM,
    )
    assert one.status_code == 200, one.text
    assert set(one.json()) == {
        "model",
        "embeddings",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
    }
    assert one.json()["model"] == "all-minilm"
    assert one.json()["total_duration"] >= one.json()["load_duration"] >= 0
    assert one.json()["prompt_eval_count"] == minilm.tokenizer.count(SKY)
    assert_same_vector(one.json()["embeddings"][0], minilm.encode_queries([SKY])[0])

    many = live_post(
        f"{live_url}/api/embed",
        content='{\n  "model": "all-minilm",\n  "input": ["Why is the sky blue?", '
        '"Why is the grass green?"]\n}',
        headers=CURL_FORM,
    )
    assert many.status_code == 200, many.text
    for got, expected in zip(
        many.json()["embeddings"], minilm.encode_queries([SKY, GRASS]), strict=True
    ):
        assert_same_vector(got, expected)

    older = live_post(
        f"{live_url}/api/embeddings",
        content='{\n  "model": "all-minilm",\n  "prompt": "Here is an article about llamas..."\n}',
        headers=CURL_FORM,
    )
    assert older.status_code == 200, older.text
    assert set(older.json()) == {"embedding"}
    assert_same_vector(older.json()["embedding"], minilm.encode_queries([LLAMAS])[0])

    tags = live_get(f"{live_url}/api/tags").json()
    assert [model["name"] for model in tags["models"]] == [
        "all-MiniLM-L6-v2",
        "multilingual-e5-small",
        "all-MiniLM-L6-v2-int8",
    ]
    first = tags["models"][0]
    assert set(first) == {"name", "model", "modified_at", "size", "digest", "details"}
    assert first["model"] == first["name"]
    assert first["size"] is None  # unknown here: null, not an invented number
    assert {"format", "family", "families", "parameter_size", "quantization_level"} <= set(
        first["details"]
    )
    assert first["details"]["embedding_length"] == 384


def test_ollamas_options_are_accepted_and_its_rules_followed(
    live_url: str, minilm: EmbeddingModel
) -> None:
    url = f"{live_url}/api/embed"
    full = minilm.encode_queries([SKY])[0]
    tagged = live_post(
        url,
        json={
            "model": "all-MiniLM-L6-v2:latest",
            "input": SKY,
            "options": {"temperature": 0},
            "keep_alive": "5m",
        },
    )
    assert tagged.status_code == 200, tagged.text
    assert_same_vector(tagged.json()["embeddings"][0], full)

    # dimensions: the first N components, scaled back to unit length, as Ollama does.
    short = live_post(url, json={"model": "all-minilm", "input": SKY, "dimensions": 8}).json()
    assert len(short["embeddings"][0]) == 8
    assert abs(np.linalg.norm(short["embeddings"][0]) - 1.0) < 1e-5
    assert cosine(short["embeddings"][0], full[:8].tolist()) > 0.9999

    # No input (or an empty string) loads the model and answers no embeddings.
    assert live_post(url, json={"model": "all-minilm", "input": ""}).json()["embeddings"] == []
    assert live_post(url, json={"model": "all-minilm"}).json()["embeddings"] == []
    older = live_post(f"{live_url}/api/embeddings", json={"model": "all-minilm", "prompt": ""})
    assert older.json() == {"embedding": []}

    # Ollama answers 400 to a request it cannot read: a missing model, token ids.
    missing = live_post(url, json={"input": SKY})
    assert missing.status_code == 400
    assert missing.json() == {"error": "model: Field required"}
    ids = live_post(url, json={"model": "all-minilm", "input": [1, 2, 3]})
    assert ids.status_code == 400
    assert "this service embeds text" in ids.json()["error"]


def test_keys_are_required_and_scoped_and_errors_keep_each_apis_shape(
    live_url: str, keys: dict[str, str]
) -> None:
    stranger = OpenAI(base_url=f"{live_url}/v1", api_key="ssk_not_a_real_key")
    with stranger, pytest.raises(openai.AuthenticationError) as refused:
        stranger.embeddings.create(model="all-minilm", input=SKY)
    assert refused.value.code == "invalid_api_key"
    assert refused.value.message == "Error code: 401 - the API key is unknown or revoked"

    writer = OpenAI(base_url=f"{live_url}/v1", api_key=keys["write"])
    with writer, pytest.raises(openai.PermissionDeniedError) as lacking:
        writer.embeddings.create(model="all-minilm", input=SKY)
    assert "lacks the 'read' scope" in lacking.value.message

    body = {"model": "all-minilm", "input": SKY}
    nobody = live_post(f"{live_url}/v1/embeddings", json=body)
    assert nobody.status_code == 401
    assert nobody.headers["WWW-Authenticate"] == "Bearer"
    error = nobody.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "an API key is required" in error["message"]

    ollama = live_post(f"{live_url}/api/embed", json=body)
    assert ollama.status_code == 401
    assert set(ollama.json()) == {"error"}
    assert "an API key is required" in ollama.json()["error"]
    assert live_get(f"{live_url}/api/tags").status_code == 401
    assert live_get(f"{live_url}/api/tags", headers=bearer(keys["read_kb"])).status_code == 200

    # The rest of the service keeps its own shape.
    assert set(live_get(f"{live_url}/models").json()) == {"detail"}


def test_input_limits_and_rates_apply_in_the_apis_shapes(
    tmp_path: Path, models: ModelRegistry
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        limits=InputLimits(max_documents_per_request=2, max_document_chars=40),
        rate_limit_search="4/minute",
    )
    too_long = "a sentence that is a little too long for the configured limit"
    with TestClient(create_app(settings, models=models)) as api:
        many = api.post("/v1/embeddings", json={"model": "all-minilm", "input": ["a", "b", "c"]})
        assert many.status_code == 422
        assert many.json()["error"]["message"] == (
            "input: 3 texts, more than the limit of 2 (SEMSEARCH_LIMITS__MAX_DOCUMENTS_PER_REQUEST)"
        )
        long = api.post("/api/embed", json={"model": "all-minilm", "input": ["a", too_long]})
        assert long.status_code == 422
        assert long.json() == {
            "error": f"input.1: {len(too_long)} characters, more than the limit of 40 "
            "(SEMSEARCH_LIMITS__MAX_DOCUMENT_CHARS)"
        }
        older = api.post("/api/embeddings", json={"model": "all-minilm", "prompt": too_long})
        assert older.json()["error"].startswith("prompt: ")
        assert too_long not in older.text

        ok = api.post("/v1/embeddings", json={"model": "all-minilm", "input": "a"})
        assert ok.status_code == 200
        spent = api.post("/v1/embeddings", json={"model": "all-minilm", "input": "a"})
        assert spent.status_code == 429
        assert 1 <= int(spent.headers["Retry-After"]) <= 60
        assert spent.json()["error"]["code"] == "rate_limit_exceeded"
        assert "4 per 1 minute" in spent.json()["error"]["message"]


def test_the_schema_documents_the_prefix_convention_and_each_apis_errors(
    api: TestClient,
) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path, error in (("/v1/embeddings", "OpenAIError"), ("/api/embed", "OllamaError")):
        operation = paths[path]["post"]
        assert "any other text as a query, with `query: ` added" in operation["description"]
        for code in ("400", "401", "404", "4XX"):
            schema = operation["responses"][code]["content"]["application/json"]["schema"]
            assert schema["$ref"].endswith(f"/{error}"), (path, code)
    assert json.dumps(paths["/v1/models"]).count("OpenAIError") >= 1
