"""Embedding quality on sentence pairs, embedded the way the search embeds a query.

Two kinds of TSV, told apart by the header:

- graded: ``... score sentence1 sentence2`` (STS benchmark, score 0-5) -> Spearman correlation
  between cosine similarity and score;
- binary: ``sentence1 sentence2 label`` (label 0/1, e.g. BQ, ATEC) -> ROC AUC, the best F1 and
  its threshold, and error rate, precision and recall at a chosen threshold.

Every side is cleaned with `retrieval.text.clean_query` and embedded as a query
(`EmbeddingModel.encode_queries`), as `Searcher.search` does, so the figures describe the
similarity a collection's threshold is compared with (rows are unit length: cosine = dot product).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.stats import spearmanr
from sklearn.metrics import (
    precision_recall_curve,
    roc_auc_score,
)

from retrieval.errors import InvalidInput
from retrieval.models.base import EmbeddingModel
from retrieval.text import clean_query

PairKind = Literal["graded", "binary"]

ENCODE_BATCH_TEXTS = 256
"""Texts per `EmbeddingModel.encode_queries` call: one step of the progress callback."""

EncodeProgress = Callable[[int, int], None]
"""Called as (texts encoded, texts in all) while encoding."""


@dataclass(frozen=True, slots=True)
class SentencePair:
    first: str
    second: str
    label: float
    """The gold score (graded) or 0/1 (binary)."""


@dataclass(frozen=True, slots=True)
class PairSet:
    name: str
    kind: PairKind
    pairs: list[SentencePair]


@dataclass(frozen=True, slots=True)
class GradedMetrics:
    spearman: float


@dataclass(frozen=True, slots=True)
class ThresholdMetrics:
    """A pair is predicted similar when its similarity >= threshold (the search's rule)."""

    threshold: float
    error_rate: float
    precision: float
    recall: float


@dataclass(frozen=True, slots=True)
class BinaryMetrics:
    positives: int
    negatives: int
    roc_auc: float
    best_f1: float
    best_f1_threshold: float
    at_threshold: ThresholdMetrics | None


@dataclass(frozen=True, slots=True)
class PairsReport:
    dataset: str
    kind: PairKind
    model: str
    pairs: int
    texts: int
    """Distinct cleaned texts that were embedded."""
    encode_seconds: float
    texts_per_s: float
    graded: GradedMetrics | None
    """Set for a graded set, None for a binary one."""
    binary: BinaryMetrics | None
    """Set for a binary set, None for a graded one."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return dataclasses.asdict(self)


def load_pairs(path: Path, *, limit: int | None = None) -> PairSet:
    """Read a graded or a binary pair TSV (the first `limit` pairs if given).

    Lines are split on tabs (no quoting: sentences may hold quotes). A `score` column is
    graded; a `label` column is binary when every label is 0 or 1, graded otherwise (STS-B
    files put their 0-5 scores under either name). Raises ValueError for an unknown header,
    a short line or a label that is not a number.
    """
    with path.open(encoding="utf-8", newline="") as lines:
        header = [name.strip().lower() for name in lines.readline().rstrip("\r\n").split("\t")]
        label_name = next((name for name in ("score", "label") if name in header), None)
        if label_name is None or not {"sentence1", "sentence2"} <= set(header):
            raise ValueError(
                f"{path}: the header {header} names neither sentence1, sentence2 and score "
                "(graded pairs) nor sentence1, sentence2 and label (0/1 or graded pairs)"
            )
        label_column = header.index(label_name)
        first_column, second_column = header.index("sentence1"), header.index("sentence2")
        pairs: list[SentencePair] = []
        for number, line in enumerate(lines, 2):
            if limit is not None and len(pairs) >= limit:
                break
            fields = line.rstrip("\r\n").split("\t")
            if fields == [""]:
                continue
            if len(fields) < len(header):
                raise ValueError(f"{path}:{number}: {len(fields)} columns, expected {len(header)}")
            pairs.append(
                SentencePair(
                    first=fields[first_column],
                    second=fields[second_column],
                    label=_parse_label(fields[label_column], f"{path}:{number}"),
                )
            )
    binary = label_name == "label" and all(pair.label in (0.0, 1.0) for pair in pairs)
    kind: PairKind = "binary" if binary else "graded"
    return PairSet(name=path.stem, kind=kind, pairs=pairs)


def _parse_label(value: str, where: str) -> float:
    try:
        label = float(value)
    except ValueError as exc:
        raise ValueError(f"{where}: label {value!r} is not a number") from exc
    if not math.isfinite(label):
        raise ValueError(f"{where}: label {value!r} is not a finite number")
    return label


def pair_similarities(
    model: EmbeddingModel,
    pairs: Sequence[SentencePair],
    *,
    clean: Callable[[str], str] = clean_query,
    progress: EncodeProgress | None = None,
) -> NDArray[np.float32]:
    """Cosine similarity of each pair, both sides cleaned with `clean` and embedded in batches.

    Each distinct cleaned text is embedded once.
    """
    firsts = [clean(pair.first) for pair in pairs]
    seconds = [clean(pair.second) for pair in pairs]
    texts = list(dict.fromkeys(firsts + seconds))
    row_of = {text: row for row, text in enumerate(texts)}
    matrix = np.zeros((len(texts), model.dimension), dtype=np.float32)
    for start in range(0, len(texts), ENCODE_BATCH_TEXTS):
        batch = texts[start : start + ENCODE_BATCH_TEXTS]
        matrix[start : start + len(batch)] = model.encode_queries(batch)
        if progress is not None:
            progress(start + len(batch), len(texts))
    left = matrix[[row_of[text] for text in firsts]]
    right = matrix[[row_of[text] for text in seconds]]
    similarities: NDArray[np.float32] = np.einsum("ij,ij->i", left, right)
    return similarities


def evaluate_pairs(
    model: EmbeddingModel,
    pair_set: PairSet,
    *,
    threshold: float | None = None,
    clean: Callable[[str], str] = clean_query,
    progress: EncodeProgress | None = None,
) -> PairsReport:
    """Embed every pair as the search embeds queries and score similarity against the labels.

    `threshold` (binary sets only) adds error rate, precision and recall at that similarity.
    Raises InvalidInput for an empty set, a threshold on a graded set, or a binary set with
    only one class.
    """
    if not pair_set.pairs:
        raise InvalidInput(f"{pair_set.name}: no pairs to evaluate")
    if threshold is not None and pair_set.kind == "graded":
        raise InvalidInput("a threshold applies to 0/1 labelled pairs, not to graded scores")
    started = time.perf_counter()
    similarities = pair_similarities(model, pair_set.pairs, clean=clean, progress=progress)
    encode_seconds = time.perf_counter() - started
    labels = np.asarray([pair.label for pair in pair_set.pairs], dtype=np.float64)
    texts = len({clean(side) for pair in pair_set.pairs for side in (pair.first, pair.second)})
    return PairsReport(
        dataset=pair_set.name,
        kind=pair_set.kind,
        model=model.name,
        pairs=len(pair_set.pairs),
        texts=texts,
        encode_seconds=encode_seconds,
        texts_per_s=texts / encode_seconds if encode_seconds > 0 else 0.0,
        graded=(
            GradedMetrics(spearman=float(spearmanr(similarities, labels).statistic))
            if pair_set.kind == "graded"
            else None
        ),
        binary=(
            binary_metrics(similarities, labels.astype(np.int64), threshold=threshold)
            if pair_set.kind == "binary"
            else None
        ),
    )


def binary_metrics(
    similarities: NDArray[np.float32], labels: NDArray[np.int64], *, threshold: float | None
) -> BinaryMetrics:
    """ROC AUC, best F1 over all thresholds (score >= threshold is positive), and the figures
    at `threshold` if given."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        raise InvalidInput("0/1 pairs need both labels to score a threshold; one is missing")
    precision, recall, thresholds = precision_recall_curve(labels, similarities)
    # The last (precision 1, recall 0) point has no threshold.
    precision, recall = precision[:-1], recall[:-1]
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall,
        denominator,
        out=np.zeros_like(denominator),
        where=denominator > 0,
    )
    best = int(np.argmax(f1))
    at_threshold = None
    if threshold is not None:
        predicted = similarities >= threshold
        true_positives = int(np.sum(predicted & (labels == 1)))
        predicted_positives = int(predicted.sum())
        at_threshold = ThresholdMetrics(
            threshold=threshold,
            error_rate=float(np.mean(predicted != (labels == 1))),
            precision=true_positives / predicted_positives if predicted_positives else 0.0,
            recall=true_positives / positives,
        )
    return BinaryMetrics(
        positives=positives,
        negatives=negatives,
        roc_auc=float(roc_auc_score(labels, similarities)),
        best_f1=float(f1[best]),
        best_f1_threshold=float(thresholds[best]),
        at_threshold=at_threshold,
    )
