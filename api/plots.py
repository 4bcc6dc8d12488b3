"""Pictures of measured figures, drawn with matplotlib (Agg: no display needed)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

from api.schemas import CalibrationPublic


def calibration_png(calibration: CalibrationPublic) -> bytes:
    """The precision/recall curve over thresholds, with the chosen threshold marked."""
    curve = sorted(calibration.curve, key=lambda point: point.threshold)
    thresholds = [point.threshold for point in curve]
    figure = Figure(figsize=(7, 4.2), dpi=110)
    axes = figure.subplots()
    axes.plot(thresholds, [p.precision for p in curve], label="precision", color="tab:blue")
    axes.plot(thresholds, [p.recall for p in curve], label="recall", color="tab:orange")
    if any(point.rejection is not None for point in curve):
        axes.plot(
            thresholds,
            [p.rejection if p.rejection is not None else float("nan") for p in curve],
            label="rejection of out-of-scope",
            color="tab:green",
            linestyle="--",
        )
    promised = calibration.promised
    axes.axvline(calibration.threshold, color="black", linewidth=1)
    axes.scatter(
        [calibration.threshold] * 2,
        [promised.precision.value or 0.0, promised.recall.value or 0.0],
        color="black",
        zorder=3,
    )
    axes.annotate(
        f"threshold {calibration.threshold:.3f}\n"
        f"precision {promised.precision.value or 0:.2f} (reached {_value(calibration, 'p')})\n"
        f"recall {promised.recall.value or 0:.2f} (reached {_value(calibration, 'r')})",
        xy=(calibration.threshold, 0.05),
        xytext=(6, 0),
        textcoords="offset points",
        fontsize=8,
    )
    target = calibration.target
    goal = "best F1" if target.kind == "f1" else f"{target.kind} >= {target.value}"
    axes.set_title(
        f"{calibration.collection}: {calibration.samples} {calibration.shape}, "
        f"{calibration.model}, {calibration.mode}; goal {goal}",
        fontsize=9,
    )
    axes.set_xlabel("threshold (cosine similarity, score >= threshold)")
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _value(calibration: CalibrationPublic, which: str) -> str:
    estimate = calibration.reached.precision if which == "p" else calibration.reached.recall
    return "n/a" if estimate.value is None else f"{estimate.value:.2f}"
