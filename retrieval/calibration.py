"""Threshold calibration: a collection's threshold chosen from labelled samples, not guessed.

Two shapes of samples, as users have them:

- queries (retrieval, intent recall): a query and the ids of the documents that answer it; a
  query with none is out of scope and should get no hit. Every query runs through the
  collection's real search path (model, term map, mode, chunking), grouped by document, and
  each of its `top_k` hits counts as correct when its document is relevant.
- pairs (matching): two texts and whether they match. `a` is scored as a query and `b` as a
  stored chunk, exactly as a search scores a chunk against a query.

At a threshold t (a hit is kept when score >= t, the search's rule):

    precision = correct hits kept / hits kept
    recall    = samples with something to find that keep a correct hit / such samples
    rejection = samples with nothing to find that keep no hit / such samples

The curve is computed over every distinct score (scikit-learn's precision_recall_curve for
the hit-level precision). The chosen threshold meets the target: the lowest one whose
precision reaches a precision target (the most recall), the highest one whose recall reaches
a recall target (the most precision), or the best F1. What it promises is measured on the
samples it was chosen on; what it reaches is measured by cross-validation (stratified folds:
chosen on the other folds, counted on the held-out one), and both carry 95% Wilson intervals
from their counts, so a promise that rests on too few samples says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binomtest
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import StratifiedKFold

from retrieval.errors import InvalidInput

MIN_SAMPLES = 20
"""Fewer labelled samples than this cannot place a threshold with any confidence."""
FOLDS = 5
CONFIDENCE = 0.95
WANTED_HALF_WIDTH = 0.05
"""A promise is called firm when its 95% interval is at most this far on either side."""
SEED = 20261129


class TargetKind(StrEnum):
    PRECISION = "precision"
    RECALL = "recall"
    F1 = "f1"


@dataclass(frozen=True, slots=True)
class Target:
    """What the threshold is chosen for: a precision or recall to reach, or the best F1."""

    kind: TargetKind = TargetKind.F1
    value: float | None = None

    def describe(self) -> str:
        return "best F1" if self.kind is TargetKind.F1 else f"{self.kind.value} >= {self.value}"


@dataclass(frozen=True, slots=True)
class SampleOutcome:
    """What the search made of one labelled sample: its hits' scores and which were right."""

    scores: tuple[float, ...]
    correct: tuple[bool, ...]
    has_answer: bool
    """Whether the sample has something to find (an in-scope query, a matching pair)."""

    @property
    def best_correct(self) -> float:
        """The highest score of a correct hit (-inf when none was found)."""
        return max(
            (score for score, right in zip(self.scores, self.correct, strict=True) if right),
            default=-math.inf,
        )

    @property
    def best(self) -> float:
        return max(self.scores, default=-math.inf)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A proportion measured from counts, with its 95% Wilson interval."""

    value: float | None
    successes: int
    trials: int
    low: float | None
    high: float | None

    @classmethod
    def of(cls, successes: int, trials: int) -> Estimate:
        if trials == 0:
            return cls(value=None, successes=0, trials=0, low=None, high=None)
        interval = binomtest(successes, trials).proportion_ci(CONFIDENCE, method="wilson")
        return cls(
            value=successes / trials,
            successes=successes,
            trials=trials,
            low=float(interval.low),
            high=float(interval.high),
        )

    @property
    def half_width(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2


@dataclass(frozen=True, slots=True)
class CurvePoint:
    threshold: float
    precision: float
    recall: float
    f1: float
    rejection: float | None


@dataclass(frozen=True, slots=True)
class Counts:
    """Counts at one threshold over some samples: what precision, recall, rejection rest on."""

    kept: int = 0
    kept_correct: int = 0
    answerable: int = 0
    answered: int = 0
    unanswerable: int = 0
    rejected: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            kept=self.kept + other.kept,
            kept_correct=self.kept_correct + other.kept_correct,
            answerable=self.answerable + other.answerable,
            answered=self.answered + other.answered,
            unanswerable=self.unanswerable + other.unanswerable,
            rejected=self.rejected + other.rejected,
        )

    @property
    def precision(self) -> Estimate:
        return Estimate.of(self.kept_correct, self.kept)

    @property
    def recall(self) -> Estimate:
        return Estimate.of(self.answered, self.answerable)

    @property
    def rejection(self) -> Estimate:
        return Estimate.of(self.rejected, self.unanswerable)


@dataclass(frozen=True, slots=True)
class Calibration:
    """The curve, the chosen threshold, what it promises and what it reached on unseen data."""

    target: Target
    threshold: float
    target_met: bool
    """False when no threshold reaches the target: the closest one is chosen."""
    promised: Counts
    """At the threshold, on all the samples it was chosen on."""
    reached: Counts
    """Cross-validated: each fold counted at the threshold chosen on the other folds."""
    curve: list[CurvePoint]
    samples: int
    answerable: int
    unanswerable: int
    warnings: list[str] = field(default_factory=list)


def check_sample_counts(*, answerable: int, unanswerable: int, shape: str) -> None:
    """InvalidInput unless there are enough samples, with and without an answer."""
    total = answerable + unanswerable
    positive, negative = (
        ("matching pairs", "non-matching pairs")
        if shape == "pairs"
        else ("queries with relevant documents", 'out-of-scope queries ("relevant": [])')
    )
    if total < MIN_SAMPLES or answerable == 0 or unanswerable == 0:
        raise InvalidInput(
            f"{shape}: calibration needs at least {MIN_SAMPLES} samples, with at least one of "
            f"{positive} and one of {negative}; got {answerable} {positive} and {unanswerable} "
            f"{negative}. About 200 samples, a fifth of them {negative}, give thresholds whose "
            "precision is known to within a few points."
        )


def calibrate(outcomes: Sequence[SampleOutcome], target: Target) -> Calibration:
    """Choose the threshold that meets `target` on the samples, and cross-validate it."""
    labels = np.array([outcome.has_answer for outcome in outcomes])
    answerable = int(labels.sum())
    check_sample_counts(
        answerable=answerable, unanswerable=len(outcomes) - answerable, shape="samples"
    )
    curve = precision_recall(outcomes)
    if not curve:
        raise InvalidInput("samples: the search returned no hit for any sample")
    threshold, met = choose_threshold(curve, target)
    reached = Counts()
    folds = StratifiedKFold(
        n_splits=min(FOLDS, answerable, len(outcomes) - answerable), shuffle=True, random_state=SEED
    )
    if folds.n_splits >= 2:
        for fit, held_out in folds.split(np.zeros(len(outcomes)), labels):
            fitted_curve = precision_recall([outcomes[i] for i in fit])
            fitted = choose_threshold(fitted_curve, target)[0] if fitted_curve else math.inf
            reached = reached + counts_at([outcomes[i] for i in held_out], fitted)
    promised = counts_at(outcomes, threshold)
    return Calibration(
        target=target,
        threshold=threshold,
        target_met=met,
        promised=promised,
        reached=reached,
        curve=curve,
        samples=len(outcomes),
        answerable=answerable,
        unanswerable=len(outcomes) - answerable,
        warnings=_warnings(target, met, promised, reached),
    )


def counts_at(outcomes: Sequence[SampleOutcome], threshold: float) -> Counts:
    """Precision, recall and rejection counts when hits need score >= threshold."""
    counts = Counts()
    for outcome in outcomes:
        kept = [right for score, right in zip(outcome.scores, outcome.correct, strict=True)
                if score >= threshold]  # fmt: skip
        counts = counts + Counts(
            kept=len(kept),
            kept_correct=sum(kept),
            answerable=int(outcome.has_answer),
            answered=int(outcome.has_answer and outcome.best_correct >= threshold),
            unanswerable=int(not outcome.has_answer),
            rejected=int(not outcome.has_answer and outcome.best < threshold),
        )
    return counts


def precision_recall(outcomes: Sequence[SampleOutcome]) -> list[CurvePoint]:
    """The curve at every distinct hit score, highest threshold first."""
    scores = np.array([score for outcome in outcomes for score in outcome.scores])
    correct = np.array([right for outcome in outcomes for right in outcome.correct])
    if scores.size == 0:
        return []
    if correct.all() or not correct.any():
        # precision_recall_curve needs both classes among the hits; precision is 1 or 0.
        thresholds = np.unique(scores)
        precisions = np.full(thresholds.shape, 1.0 if correct.all() else 0.0)
    else:
        precision, _, thresholds = precision_recall_curve(correct, scores)
        precisions = precision[:-1]
    answerable = np.array([o.best_correct for o in outcomes if o.has_answer])
    unanswerable = np.array([o.best for o in outcomes if not o.has_answer])
    recall = _share_at_or_above(answerable, thresholds)
    rejection = 1.0 - _share_at_or_above(unanswerable, thresholds) if unanswerable.size else None
    points = [
        CurvePoint(
            threshold=float(threshold),
            precision=float(p),
            recall=float(r),
            f1=float(2 * p * r / (p + r)) if p + r else 0.0,
            rejection=float(rejection[i]) if rejection is not None else None,
        )
        for i, (threshold, p, r) in enumerate(zip(thresholds, precisions, recall, strict=True))
    ]
    return sorted(points, key=lambda point: -point.threshold)


def _share_at_or_above(
    values: NDArray[np.float64], thresholds: NDArray[np.float64]
) -> NDArray[np.float64]:
    """For each threshold, the share of `values` at or above it."""
    if values.size == 0:
        return np.zeros(thresholds.shape)
    ordered = np.sort(values)
    below = np.searchsorted(ordered, thresholds, side="left")
    return np.asarray((values.size - below) / values.size, dtype=np.float64)


def choose_threshold(curve: Sequence[CurvePoint], target: Target) -> tuple[float, bool]:
    """The threshold that meets the target, and whether any does (else the closest one)."""
    key: Callable[[CurvePoint], tuple[float, float]]
    if target.kind is TargetKind.F1:
        best = max(curve, key=lambda point: (point.f1, point.threshold))
        return best.threshold, True
    value = target.value if target.value is not None else 0.0
    if target.kind is TargetKind.PRECISION:
        meeting = [point for point in curve if point.precision >= value]
        key = lambda point: (point.recall, -point.threshold)  # noqa: E731
        closest = lambda point: (point.precision, point.recall)  # noqa: E731
    else:
        meeting = [point for point in curve if point.recall >= value]
        key = lambda point: (point.precision, point.threshold)  # noqa: E731
        closest = lambda point: (point.recall, point.precision)  # noqa: E731
    if meeting:
        return max(meeting, key=key).threshold, True
    return max(curve, key=closest).threshold, False


def _warnings(target: Target, met: bool, promised: Counts, reached: Counts) -> list[str]:
    warnings: list[str] = []
    if not met:
        warnings.append(
            f"no threshold reaches {target.describe()} on these samples; the closest one was "
            "chosen. More or better-separated samples, another model or mode may reach it."
        )
    for name, estimate in (
        ("precision", promised.precision),
        ("recall", promised.recall),
        ("rejection", promised.rejection),
    ):
        half_width = estimate.half_width
        if estimate.value is None or half_width is None or half_width <= WANTED_HALF_WIDTH:
            continue
        needed = _trials_for(estimate.value)
        warnings.append(
            f"{name} {estimate.value:.2f} rests on {estimate.trials} cases: its 95% interval is "
            f"{estimate.low:.2f}-{estimate.high:.2f}, too wide to promise it within "
            f"±{WANTED_HALF_WIDTH}; about {needed} cases would be needed."
        )
    promised_precision, reached_precision = promised.precision.value, reached.precision.value
    if (
        promised_precision is not None
        and reached_precision is not None
        and promised_precision - reached_precision > WANTED_HALF_WIDTH
    ):
        warnings.append(
            f"on samples it was not chosen on, precision fell from {promised_precision:.2f} to "
            f"{reached_precision:.2f}: expect the lower figure on new questions."
        )
    return warnings


def _trials_for(proportion: float) -> int:
    """Cases whose 95% interval around `proportion` is about ±WANTED_HALF_WIDTH wide."""
    z = 1.96
    spread = max(proportion * (1 - proportion), 0.05 * 0.95)
    return math.ceil(spread * (z / WANTED_HALF_WIDTH) ** 2)
