"""Texts in, vectors out, for callers that keep the vectors themselves (the embedding APIs).

Which role a text plays. Models such as multilingual-e5-small read a text differently as a
query or as a passage, told apart by a prefix (``query: ``, ``passage: ``). A text that already
starts with one of the model's prefixes is embedded exactly as given: its caller chose. Any
other text is embedded as a query, with the model's query prefix: the E5 model card names
``query: `` the prefix for symmetric tasks and for using embeddings as features, which is what
a caller of a plain embedding API does. A model without prefixes (all-MiniLM-L6-v2) embeds
every text as given. Texts are not cleaned: the vector is that of the text sent.

A model reads a bounded number of tokens from one text (`ModelSpec.max_tokens`, its prefix
and special tokens excluded). A longer text is either refused or cut to that many tokens,
as the caller asks; it is never embedded in windows.

Token counts are the model's own tokenizer's: the tokens of the text as the model reads it,
its prefix included and the special tokens ([CLS]/[SEP], <s>/</s>) excluded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from retrieval.errors import InvalidInput, NotFound
from retrieval.limits import InputLimits
from retrieval.models.base import EmbeddingModel, ModelSpec, TextRole
from retrieval.models.registry import ModelRegistry

MAX_NAME_SHOWN = 100
"""Characters of an unknown model name repeated in the error that refuses it."""


class ContextLengthExceeded(InvalidInput):
    """Raised when a text is longer than its model reads and the caller asked not to cut it.

    A subclass of InvalidInput (422 in the service's own API); the embedding APIs it serves
    answer 400, as OpenAI and Ollama do."""


@dataclass(frozen=True, slots=True)
class EmbeddedTexts:
    """The vectors of some texts under one model, with what it cost."""

    model: ModelSpec
    vectors: NDArray[np.float32]
    """One unit-length row per text, in the order of the texts."""
    token_counts: tuple[int, ...]
    """Tokens the model read from each text (module docstring)."""
    load_seconds: float
    """Time spent loading the model for this call: 0 when it was loaded already."""

    @property
    def total_tokens(self) -> int:
        return sum(self.token_counts)


def find_model(models: ModelRegistry, name: str) -> ModelSpec:
    """The model a name or alias means; NotFound listing the available models if none.

    Never a substitute: an unknown name is an error, not the default model."""
    if name not in models.names():
        shown = name if len(name) <= MAX_NAME_SHOWN else f"{name[:MAX_NAME_SHOWN]}..."
        available = ", ".join(spec.name for spec in models.specs)
        raise NotFound(
            f"model {shown!r} not found; available models: {available} "
            "(GET /models lists the other names each one answers to)"
        )
    return models.resolve(name)


def role_of(spec: ModelSpec, text: str) -> tuple[TextRole, str]:
    """The role a text is embedded in and its body, the text without the role's prefix."""
    prefixes = [(TextRole.PASSAGE, spec.passage_prefix), (TextRole.QUERY, spec.query_prefix)]
    # The longer prefix first, should one of them begin with the other.
    for role, prefix in sorted(prefixes, key=lambda pair: -len(pair[1])):
        if prefix and text.startswith(prefix):
            return role, text[len(prefix) :]
    return TextRole.QUERY, text


def prefix_of(spec: ModelSpec, role: TextRole) -> str:
    return spec.query_prefix if role is TextRole.QUERY else spec.passage_prefix


def embed_texts(
    models: ModelRegistry,
    spec: ModelSpec,
    texts: Sequence[str],
    *,
    limits: InputLimits,
    truncate: bool,
    labels: Sequence[str],
) -> EmbeddedTexts:
    """Embed texts under a model, each in the role its prefix gives (module docstring).

    The texts are checked against the limits on documents first (`InputLimits.check_texts`).
    A text longer than the model reads is cut to its first `spec.max_tokens` tokens when
    `truncate`, otherwise refused with ContextLengthExceeded naming it by its label.
    Loads the model first if it is not loaded yet (an empty `texts` only loads it).
    """
    limits.check_texts(texts, labels=labels)
    loaded = models.is_loaded(spec.name)
    started = time.perf_counter()
    model = models.get(spec.name)
    load_seconds = 0.0 if loaded else time.perf_counter() - started
    roles: list[TextRole] = []
    bodies: list[str] = []
    counts: list[int] = []
    for label, text in zip(labels, texts, strict=True):
        role, body = role_of(spec, text)
        body = _fit(model, body, truncate=truncate, label=label)
        roles.append(role)
        bodies.append(body)
        counts.append(model.tokenizer.count(prefix_of(spec, role) + body))
    vectors = np.zeros((len(texts), spec.dimension), dtype=np.float32)
    for role in TextRole:
        rows = [row for row, row_role in enumerate(roles) if row_role is role]
        if rows:
            vectors[rows] = model.encode([bodies[row] for row in rows], role=role)
    return EmbeddedTexts(
        model=spec, vectors=vectors, token_counts=tuple(counts), load_seconds=load_seconds
    )


def _fit(model: EmbeddingModel, body: str, *, truncate: bool, label: str) -> str:
    """`body` within the model's window: as it is, cut to the window, or refused."""
    window = model.max_tokens
    spans = model.tokenizer.token_spans(body)
    if len(spans) <= window:
        return body
    if not truncate:
        raise ContextLengthExceeded(
            f"{label}: {len(spans)} tokens, more than the {window} tokens {model.name} reads "
            "from one text: shorten or split it"
        )
    return body[: spans[window - 1][1]]


def shorten(vectors: NDArray[np.float32], dimensions: int | None) -> NDArray[np.float32]:
    """The first `dimensions` components of each row, scaled back to unit length.

    Unset, zero or not below the rows' length: the rows as they are (Ollama's rule). The
    bundled models were not trained for shortening, so a shortened vector ranks worse."""
    if dimensions is None or not 0 < dimensions < vectors.shape[1]:
        return vectors
    head = vectors[:, :dimensions]
    norms = np.linalg.norm(head, axis=1, keepdims=True)
    return np.asarray(head / np.maximum(norms, 1e-12), dtype=np.float32)


def require_dimension(spec: ModelSpec, dimensions: int | None) -> None:
    """Refuse a requested dimension other than the model's own: vectors are never cut."""
    if dimensions is not None and dimensions != spec.dimension:
        raise InvalidInput(
            f"dimensions: {spec.name} makes {spec.dimension}-dimensional embeddings and does "
            f"not shorten them; omit dimensions or send {spec.dimension}"
        )
