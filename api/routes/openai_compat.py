"""Embeddings and models in OpenAI's API shape, for the openai SDKs and the tools built on them.

Point a client at ``<service>/v1`` with one of the service's API keys as its API key.
"""

from __future__ import annotations

import base64
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Path
from numpy.typing import NDArray

from api.auth import KeyAccess, access
from api.compat_schemas import (
    MAX_MODEL_NAME_CHARS,
    OPENAI_ERRORS,
    PREFIX_CONVENTION,
    CompatRoute,
    OpenAIEmbedding,
    OpenAIEmbeddingList,
    OpenAIEmbeddingRequest,
    OpenAIError,
    OpenAIModel,
    OpenAIModelList,
    OpenAIUsage,
    error_responses,
    texts_and_labels,
)
from api.deps import LimitsDep, ServicesDep
from api.rate_limit import RateClass
from retrieval.access import Scope
from retrieval.embeddings import embed_texts, find_model, require_dimension


class OpenAIRoute(CompatRoute):
    error_style = OPENAI_ERRORS


router = APIRouter(
    prefix="/v1",
    tags=["OpenAI-compatible"],
    route_class=OpenAIRoute,
    responses=error_responses(
        OpenAIError, bad_request="A text is longer than the model reads (it is never cut)."
    ),
)


@router.post(
    "/embeddings",
    operation_id="openai_create_embeddings",
    dependencies=[Depends(access(Scope.READ, RateClass.SEARCH))],
    description="OpenAI's create-embeddings call: one unit-length vector per text, in the "
    f"order of `input`.\n\n{PREFIX_CONVENTION}\n\nA text longer than the model reads is "
    "refused (400), as OpenAI does; texts are not cleaned. Errors answer in OpenAI's shape, "
    '`{"error": {"message", "type", "param", "code"}}`.',
)
def create_embeddings(
    body: OpenAIEmbeddingRequest, services: ServicesDep, limits: LimitsDep
) -> OpenAIEmbeddingList:
    spec = find_model(services.models, body.model)
    require_dimension(spec, body.dimensions)
    texts, labels = texts_and_labels("input", body.input)
    embedded = embed_texts(
        services.models, spec, texts, limits=limits, truncate=False, labels=labels
    )
    encode = _base64 if body.encoding_format == "base64" else _floats
    return OpenAIEmbeddingList(
        data=[
            OpenAIEmbedding(embedding=encode(vector), index=index)
            for index, vector in enumerate(embedded.vectors)
        ],
        model=spec.name,
        usage=OpenAIUsage(prompt_tokens=embedded.total_tokens, total_tokens=embedded.total_tokens),
    )


@router.get("/models", operation_id="openai_list_models")
def list_models(services: ServicesDep, _: KeyAccess) -> OpenAIModelList:
    """Every registered model by its registered name (GET /models lists their other names)."""
    return OpenAIModelList(data=[OpenAIModel(id=spec.name) for spec in services.models.specs])


@router.get("/models/{model:path}", operation_id="openai_retrieve_model")
def retrieve_model(
    model: Annotated[str, Path(max_length=MAX_MODEL_NAME_CHARS)],
    services: ServicesDep,
    _: KeyAccess,
) -> OpenAIModel:
    """One model, by any of its names; `id` is its registered name."""
    return OpenAIModel(id=find_model(services.models, model).name)


def _floats(vector: NDArray[np.float32]) -> list[float]:
    values: list[float] = vector.tolist()
    return values


def _base64(vector: NDArray[np.float32]) -> str:
    """Little-endian float32 bytes in base64: what the openai SDK decodes."""
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
