"""Embeddings and models in Ollama's API shape, for Ollama's clients and tutorials.

A tutorial's ``curl http://localhost:11434/api/embed -d '{...}'`` works against this service by
changing only the host and port (plus an API key, once the service has keys).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends

from api.auth import KeyAccess, access
from api.compat_schemas import (
    OLLAMA_ERRORS,
    PREFIX_CONVENTION,
    CompatRoute,
    OllamaEmbeddingRequest,
    OllamaEmbeddingResponse,
    OllamaEmbedRequest,
    OllamaEmbedResponse,
    OllamaError,
    OllamaModel,
    OllamaModelDetails,
    OllamaModelList,
    error_responses,
    texts_and_labels,
)
from api.deps import LimitsDep, ServicesDep
from api.rate_limit import RateClass
from retrieval.access import Scope
from retrieval.embeddings import embed_texts, find_model, shorten
from retrieval.models.base import ModelSpec
from retrieval.models.registry import ModelRegistry


class OllamaRoute(CompatRoute):
    error_style = OLLAMA_ERRORS


router = APIRouter(
    prefix="/api",
    tags=["Ollama-compatible"],
    route_class=OllamaRoute,
    responses=error_responses(
        OllamaError,
        bad_request="The body cannot be read (not JSON, a field missing or of the wrong "
        "type), or truncate is false and a text is longer than the model reads.",
    ),
)

EMBEDDING_RATE = [Depends(access(Scope.READ, RateClass.SEARCH))]


@router.post(
    "/embed",
    operation_id="ollama_embed",
    dependencies=EMBEDDING_RATE,
    description="Ollama's embed call: one unit-length vector per text, in the order of "
    f"`input`.\n\n{PREFIX_CONVENTION}\n\nA text longer than the model reads is cut to its "
    "first tokens unless `truncate` is false (then 400); texts are not cleaned. `options` "
    'and `keep_alive` are accepted and ignored. Errors answer in Ollama\'s shape, `{"error": '
    '"..."}`.',
)
def embed(
    body: OllamaEmbedRequest, services: ServicesDep, limits: LimitsDep
) -> OllamaEmbedResponse:
    started = time.perf_counter()
    spec = _find_model(services.models, body.model)
    # As Ollama: an empty string is no input at all, an empty string in a list is a text.
    texts, labels = texts_and_labels("input", body.input if body.input != "" else None)
    embedded = embed_texts(
        services.models, spec, texts, limits=limits, truncate=body.truncate, labels=labels
    )
    embeddings: list[list[float]] = shorten(embedded.vectors, body.dimensions).tolist()
    return OllamaEmbedResponse(
        model=body.model,
        embeddings=embeddings,
        total_duration=_nanoseconds(time.perf_counter() - started),
        load_duration=_nanoseconds(embedded.load_seconds),
        prompt_eval_count=embedded.total_tokens,
    )


@router.post(
    "/embeddings",
    operation_id="ollama_embeddings",
    dependencies=EMBEDDING_RATE,
    description="Ollama's older embeddings call: the vector of one text (`prompt`); an empty "
    f"prompt answers an empty vector.\n\n{PREFIX_CONVENTION}\n\nA text longer than the model "
    "reads is cut to its first tokens.",
)
def embeddings(
    body: OllamaEmbeddingRequest, services: ServicesDep, limits: LimitsDep
) -> OllamaEmbeddingResponse:
    spec = _find_model(services.models, body.model)
    texts, labels = texts_and_labels("prompt", body.prompt or None)
    embedded = embed_texts(
        services.models, spec, texts, limits=limits, truncate=True, labels=labels
    )
    vector: list[float] = embedded.vectors[0].tolist() if texts else []
    return OllamaEmbeddingResponse(embedding=vector)


@router.get("/tags", operation_id="ollama_tags")
def tags(services: ServicesDep, _: KeyAccess) -> OllamaModelList:
    """Every registered model by its registered name. What this service does not know of a
    model (its size, digest, date, family) is empty or null."""
    return OllamaModelList(
        models=[
            OllamaModel(
                name=spec.name,
                model=spec.name,
                details=OllamaModelDetails(
                    format=spec.engine.value, embedding_length=spec.dimension
                ),
            )
            for spec in services.models.specs
        ]
    )


def _find_model(models: ModelRegistry, name: str) -> ModelSpec:
    """The model a name means; as in Ollama, `name:latest` also means `name`."""
    untagged = name.removesuffix(":latest")
    known = models.names()
    return find_model(models, untagged if name not in known and untagged in known else name)


def _nanoseconds(seconds: float) -> int:
    return round(seconds * 1e9)
