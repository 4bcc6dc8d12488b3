"""The ONNX Runtime engine: a sentence-transformers folder exported once, optionally as int8.

The folder's transformer is exported with torch's ONNX exporter (torch.export-based) into
a cache folder under the data directory named by a digest of the model folder's files, so a
changed model is exported anew and never served from a stale file. For int8, onnxruntime's
dynamic quantisation turns the weights into int8, a scale per output channel (activations are
quantised per batch at run time): per channel, all-MiniLM-L6-v2's int8 vectors keep a cosine
of at least 0.99 with torch's, against 0.95 with one scale per tensor. Export and
quantisation are deterministic: every process of a deployment that exports the same folder
gets the same file. Around the network, the sentence-transformers pipeline is rebuilt in
numpy: the folder's own tokenizer (truncating at its max_seq_length), mean or CLS pooling,
L2 normalisation. Folders with other modules (a Dense layer, max pooling) are refused.

Still, int8 vectors differ from torch's, so an int8 model is a model of its own name: a
collection indexed with it is searched with it, and switching re-indexes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnxruntime
from numpy.typing import NDArray
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from retrieval.errors import ConfigurationError
from retrieval.models.base import TextRole
from retrieval.models.tokenizer import HuggingFaceTokenizer

SUPPORTED_MODULES = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
)
FOLDER_FILES_IGNORED = frozenset({"README.md", ".gitattributes"})
ONNX_OPSET = 18
MAX_TOKENS = 8192
"""The longest input the export accepts; the tokenizer truncates at the model's window."""
OUTPUT = "last_hidden_state"


def folder_digest(folder: Path) -> str:
    """A digest of the model folder's files (names and contents): the export's cache key."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name not in FOLDER_FILES_IGNORED:
            digest.update(str(path.relative_to(folder)).encode("utf-8") + b"\0")
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def pooling_of(folder: Path) -> str:
    """'mean' or 'cls': the folder's pooling, or ConfigurationError for what is not supported."""
    modules: list[dict[str, Any]] = json.loads((folder / "modules.json").read_text("utf-8"))
    unsupported = [str(m.get("type")) for m in modules if m.get("type") not in SUPPORTED_MODULES]
    if unsupported:
        raise ConfigurationError(
            f"{folder}: the ONNX engine runs Transformer, Pooling and Normalize modules only, "
            f"not {', '.join(unsupported)}"
        )
    pooling = next(m for m in modules if str(m.get("type")).endswith("Pooling"))
    config = json.loads((folder / str(pooling.get("path", "")) / "config.json").read_text("utf-8"))
    modes = [key for key, value in config.items() if key.startswith("pooling_mode_") and value]
    if modes == ["pooling_mode_mean_tokens"]:
        return "mean"
    if modes == ["pooling_mode_cls_token"]:
        return "cls"
    raise ConfigurationError(f"{folder}: the ONNX engine pools by mean or CLS, not {modes}")


def exported_model(folder: Path, cache_dir: Path, *, quantized: bool) -> Path:
    """The folder's transformer as an ONNX file under `cache_dir`, exported on first use."""
    target = cache_dir / folder_digest(folder)
    fp32 = target / "model.onnx"
    wanted = target / "model.int8.onnx" if quantized else fp32
    if wanted.is_file():
        return wanted
    target.mkdir(parents=True, exist_ok=True)
    if not fp32.is_file():
        _atomically(fp32, lambda path: _export(folder, path))
    if quantized:
        _atomically(wanted, lambda path: _quantize(fp32, path))
    return wanted


@contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Silence what the exporter and the quantiser print of their own internals: deprecated
    torch APIs they call, a missing torchvision, a hint to pre-process (on the root logger).
    Nothing a caller can act on, and warnings are fatal where they are errors (the tests)."""
    exporter = logging.getLogger("torch.onnx")
    level = exporter.level
    root = logging.getLogger()
    hint = logging.Filter("onnxruntime")  # drops every record logged on the root logger itself
    exporter.setLevel(logging.ERROR)
    root.addFilter(hint)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeFilter(hint)
        exporter.setLevel(level)


def _atomically(target: Path, write: Any) -> None:
    """Write `target` through a temporary file beside it: a crash never leaves half a model."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _export(folder: Path, path: Path) -> None:
    """torch's ONNX exporter over the folder's transformer (its last hidden state)."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    transformer = cast(torch.nn.Module, model[0].auto_model).eval()
    inputs = model.tokenizer(
        ["an example", "a second, longer example"], padding=True, return_tensors="pt"
    )
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in inputs]

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            given = (input_ids, attention_mask, token_type_ids)
            output = self.transformer(**dict(zip(names, given, strict=False)))
            hidden: torch.Tensor = output.last_hidden_state
            return hidden

    batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens", max=MAX_TOKENS)
    with torch.no_grad(), _quiet_exporters():
        torch.onnx.export(
            LastHiddenState().eval(),
            tuple(inputs[name] for name in names),
            str(path),
            input_names=names,
            output_names=[OUTPUT],
            dynamic_shapes=[{0: batch, 1: tokens} for _ in names],
            opset_version=ONNX_OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def _quantize(fp32: Path, path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_exporters():
        quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=True)


class OnnxEngine:
    """Runs an exported sentence-transformers model with ONNX Runtime on the CPU."""

    def __init__(
        self,
        *,
        session: onnxruntime.InferenceSession,
        tokenizer: PreTrainedTokenizerBase,
        dimension: int,
        max_length: int,
        pooling: str,
        batch_size: int,
        query_prefix: str = "",
        passage_prefix: str = "",
    ) -> None:
        self._session = session
        self._inputs = [given.name for given in session.get_inputs()]
        self._tokenizer = tokenizer
        self._dimension = dimension
        self._max_length = max_length
        self._pooling = pooling
        self._batch_size = batch_size
        self._prefixes = {TextRole.QUERY: query_prefix, TextRole.PASSAGE: passage_prefix}

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        cache_dir: Path,
        quantized: bool,
        threads: int,
        batch_size: int,
        dimension: int,
        max_length: int,
        query_prefix: str = "",
        passage_prefix: str = "",
    ) -> OnnxEngine:
        """Export the folder on first use (seconds), then open it with `threads` threads."""
        pooling = pooling_of(folder)
        model_path = exported_model(folder, cache_dir, quantized=quantized)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Pool threads sleep between runs instead of spinning: spinning, they kept both cores
        # busy for a lone client (14 core-ms per HTTP search against 10 without) and took
        # them from request threads and ingestion, for about 2 ms less per search.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        return cls(
            session=session,
            tokenizer=tokenizer,
            dimension=dimension,
            max_length=max_length,
            pooling=pooling,
            batch_size=batch_size,
            query_prefix=query_prefix,
            passage_prefix=passage_prefix,
        )

    def encode(self, texts: Sequence[str], *, role: TextRole) -> NDArray[np.float32]:
        prefix = self._prefixes[role]
        prefixed = [prefix + text for text in texts]
        if not prefixed:
            return np.zeros((0, self._dimension), dtype=np.float32)
        # Longest first, as sentence-transformers does: batches of like lengths pad less.
        order = sorted(range(len(prefixed)), key=lambda row: -len(prefixed[row]))
        rows = np.zeros((len(prefixed), self._dimension), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            rows[batch] = self._run([prefixed[row] for row in batch])
        return rows

    def _run(self, texts: list[str]) -> NDArray[np.float32]:
        encoded = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self._max_length, return_tensors="np"
        )
        feed = {name: np.asarray(encoded[name], dtype=np.int64) for name in self._inputs}
        hidden = np.asarray(self._session.run(None, feed)[0], dtype=np.float32)
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = feed["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)

    def new_tokenizer(self) -> HuggingFaceTokenizer:
        # A copy: the engine's own tokenizer is driven by `encode` in another thread.
        return HuggingFaceTokenizer(tokenizer=copy.deepcopy(self._tokenizer))
