"""Calibrating a collection: labelled samples through its real search path, the result kept.

The numbers are computed by retrieval/calibration.py; this module scores the samples exactly
as the collection's searches score hits (its model, term map, chunking and mode), keeps the
report on the collection with what it was computed with, and says when that went stale.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from retrieval.calibration import (
    Calibration,
    Counts,
    SampleOutcome,
    Target,
    calibrate,
    check_sample_counts,
)
from retrieval.catalog import Catalog, CollectionMode, CollectionRecord
from retrieval.errors import InvalidInput
from retrieval.search import Hit, Searcher

SampleShape = Literal["queries", "pairs"]
AUTO_CANDIDATES = (CollectionMode.DENSE, CollectionMode.LEXICAL, CollectionMode.HYBRID)
"""The modes a collection in mode auto is calibrated in; the one that measures best wins."""


def hit_score(hit: Hit) -> float:
    """The score the threshold applies to."""
    return hit.score


MAX_UNKNOWN_NAMED = 5
"""A 422 for unknown documents names this many of them at most."""


@dataclass(frozen=True, slots=True)
class QuerySample:
    query: str
    relevant: tuple[str, ...]
    """Ids of the documents that answer it; empty: out of scope, it should get no hit."""


@dataclass(frozen=True, slots=True)
class PairSample:
    a: str
    b: str
    match: bool


@dataclass(frozen=True, slots=True)
class CalibrationBasis:
    """What a calibration was computed with: if any of it changes, the threshold may not hold."""

    model: str
    term_map: dict[str, str]
    chunk_max_tokens: int
    chunk_overlap_sentences: int
    mode: str
    documents: int

    def changes_since(self, current: CalibrationBasis) -> list[str]:
        """What differs now, in words; empty when the calibration still holds."""
        return [
            f"{name} was {before!r}, is {after!r}" if name != "term_map" else "the term map changed"
            for name, before, after in (
                (f.name, getattr(self, f.name), getattr(current, f.name))
                for f in dataclasses.fields(self)
            )
            if before != after
        ]


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    """A collection's calibration as kept, and whether it still describes the collection."""

    collection: str
    shape: SampleShape
    top_k: int
    basis: CalibrationBasis
    created_at: datetime
    applied: bool
    result: dict[str, Any]
    """The Calibration as JSON: threshold, promised, reached, curve, warnings."""
    stale: list[str]
    """Why the calibration may no longer hold; empty when it does."""


class Calibrator:
    """Runs labelled samples through a collection's search and chooses its threshold."""

    def __init__(self, *, searcher: Searcher, catalog: Catalog) -> None:
        self._searcher = searcher
        self._catalog = catalog

    def calibrate_queries(
        self,
        name: str,
        samples: Sequence[QuerySample],
        target: Target,
        *,
        top_k: int = 1,
        mode: CollectionMode | None = None,
        apply: bool = False,
    ) -> CalibrationReport:
        """Each query searched (grouped by document, every hit kept), its top_k hits judged."""
        answerable = sum(1 for sample in samples if sample.relevant)
        check_sample_counts(
            answerable=answerable, unanswerable=len(samples) - answerable, shape="queries"
        )
        self._check_documents_exist(name, samples)
        collection = self._catalog.get_collection(name)
        choosing = mode in (None, CollectionMode.AUTO) and collection.mode is CollectionMode.AUTO
        candidates = (
            AUTO_CANDIDATES
            if choosing
            else (mode if mode not in (None, CollectionMode.AUTO) else collection.mode,)
        )
        results = {
            candidate: calibrate(
                self.query_outcomes(name, samples, top_k=top_k, mode=candidate), target
            )
            for candidate in candidates
        }
        chosen = max(candidates, key=lambda candidate: _merit(results[candidate]))
        return self._keep(
            collection,
            "queries",
            results[chosen],
            top_k=top_k,
            mode=chosen,
            apply=apply,
            requested_mode=mode if mode is not CollectionMode.AUTO else None,
            modes=results if choosing else None,
        )

    def calibrate_pairs(
        self, name: str, samples: Sequence[PairSample], target: Target, *, apply: bool = False
    ) -> CalibrationReport:
        """Each pair scored as a search scores chunk `b` for query `a`."""
        matches = sum(1 for sample in samples if sample.match)
        check_sample_counts(answerable=matches, unanswerable=len(samples) - matches, shape="pairs")
        collection, used_mode = self._collection_and_mode(name, None)
        outcomes = self.pair_outcomes(name, samples)
        return self._keep(
            collection, "pairs", calibrate(outcomes, target), top_k=1, mode=used_mode, apply=apply
        )

    def query_outcomes(
        self,
        name: str,
        samples: Sequence[QuerySample],
        *,
        top_k: int,
        mode: CollectionMode | None = None,
    ) -> list[SampleOutcome]:
        """Each query through the collection's search: its top_k documents, which are right."""
        hits = self.query_hits(name, samples, top_k=top_k, mode=mode)
        return judge_hits(samples, hits)

    def query_hits(
        self,
        name: str,
        samples: Sequence[QuerySample],
        *,
        top_k: int,
        mode: CollectionMode | None = None,
    ) -> list[list[Hit]]:
        """Each query's best top_k documents (one hit each), every hit kept whatever its score."""
        return [
            self._searcher.search(
                name, sample.query, top_k=top_k, threshold=-1.0, group_by_document=True, mode=mode
            ).hits
            for sample in samples
        ]

    def pair_outcomes(self, name: str, samples: Sequence[PairSample]) -> list[SampleOutcome]:
        """Each pair's score, as a search would score chunk `b` for query `a`."""
        scores = self._searcher.score_pairs(name, [(sample.a, sample.b) for sample in samples])
        return [
            SampleOutcome(scores=(score,), correct=(sample.match,), has_answer=sample.match)
            for sample, score in zip(samples, scores, strict=True)
        ]

    def report(self, name: str) -> CalibrationReport | None:
        """The collection's kept calibration and why it may be stale; None if never run."""
        collection = self._catalog.get_collection(name)
        kept = collection.calibration
        if kept is None:
            return None
        basis = CalibrationBasis(**kept["basis"])
        current = self._basis(collection, CollectionMode(basis.mode))
        return CalibrationReport(
            collection=name,
            shape=kept["shape"],
            top_k=int(kept["top_k"]),
            basis=basis,
            created_at=datetime.fromisoformat(kept["created_at"]),
            applied=bool(kept["applied"]),
            result=dict(kept["result"]),
            stale=basis.changes_since(current)
            + (
                [f"the threshold was changed to {collection.threshold} since"]
                if kept["applied"] and collection.threshold != kept["result"]["threshold"]
                else []
            ),
        )

    def _collection_and_mode(
        self, name: str, mode: CollectionMode | None
    ) -> tuple[CollectionRecord, CollectionMode]:
        """The collection, and the mode its searches run in (or the one asked for)."""
        collection = self._catalog.get_collection(name)
        if mode is not None and mode is not CollectionMode.AUTO:
            return collection, mode
        return collection, self._searcher.effective_mode(collection)

    def _basis(self, collection: CollectionRecord, mode: CollectionMode) -> CalibrationBasis:
        return CalibrationBasis(
            model=collection.model,
            term_map=dict(collection.term_map),
            chunk_max_tokens=collection.chunk_max_tokens,
            chunk_overlap_sentences=collection.chunk_overlap_sentences,
            mode=mode.value,
            documents=self._catalog.document_count(collection.name),
        )

    def _check_documents_exist(self, name: str, samples: Sequence[QuerySample]) -> None:
        known = self._catalog.document_hashes(name)
        unknown = sorted({doc for sample in samples for doc in sample.relevant} - known.keys())
        if unknown:
            named = ", ".join(repr(doc) for doc in unknown[:MAX_UNKNOWN_NAMED])
            more = (
                f" and {len(unknown) - MAX_UNKNOWN_NAMED} more"
                if len(unknown) > MAX_UNKNOWN_NAMED
                else ""
            )
            raise InvalidInput(
                f"queries: {len(unknown)} relevant document ids are not in collection "
                f"{name!r}: {named}{more}"
            )

    def _keep(
        self,
        collection: CollectionRecord,
        shape: SampleShape,
        calibration: Calibration,
        *,
        top_k: int,
        mode: CollectionMode,
        apply: bool,
        requested_mode: CollectionMode | None = None,
        modes: Mapping[CollectionMode, Calibration] | None = None,
    ) -> CalibrationReport:
        """Keep the report (and apply it); `modes`: every mode tried when auto chose one."""
        basis = self._basis(collection, mode)
        created_at = datetime.now(UTC)
        result = calibration_json(calibration)
        result["auto_mode"] = mode.value if modes is not None else None
        result["modes"] = [
            _mode_summary(candidate, tried) for candidate, tried in (modes or {}).items()
        ]
        kept: Mapping[str, Any] = {
            "shape": shape,
            "top_k": top_k,
            "basis": dataclasses.asdict(basis),
            "created_at": created_at.isoformat(),
            "applied": apply,
            "result": result,
        }
        self._catalog.store_calibration(
            collection.name,
            kept,
            threshold=calibration.threshold if apply else None,
            mode=requested_mode if apply and requested_mode is not None else None,
        )
        return CalibrationReport(
            collection=collection.name,
            shape=shape,
            top_k=top_k,
            basis=basis,
            created_at=created_at,
            applied=apply,
            result=result,
            stale=[],
        )


def judge_hits(
    samples: Sequence[QuerySample],
    hits: Sequence[Sequence[Hit]],
    score_of: Callable[[Hit], float] = hit_score,
) -> list[SampleOutcome]:
    """Each query's hits as scores and whether each is right; `score_of` reads a hit's score
    (benchmarks compare other definitions of it)."""
    outcomes = []
    for sample, found in zip(samples, hits, strict=True):
        relevant = set(sample.relevant)
        outcomes.append(
            SampleOutcome(
                scores=tuple(score_of(hit) for hit in found),
                correct=tuple(hit.document_id in relevant for hit in found),
                has_answer=bool(relevant),
            )
        )
    return outcomes


def _merit(calibration: Calibration) -> tuple[bool, float]:
    """How well a mode did: whether it met the target, then its F1 on held-out samples."""
    return calibration.target_met, _f1(calibration.reached)


def _f1(counts: Counts) -> float:
    precision, recall = counts.precision.value or 0.0, counts.recall.value or 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _mode_summary(mode: CollectionMode, calibration: Calibration) -> dict[str, Any]:
    return {
        "mode": mode.value,
        "threshold": calibration.threshold,
        "target_met": calibration.target_met,
        "promised_precision": calibration.promised.precision.value,
        "promised_recall": calibration.promised.recall.value,
        "reached_precision": calibration.reached.precision.value,
        "reached_recall": calibration.reached.recall.value,
        "reached_f1": _f1(calibration.reached),
    }


def calibration_json(calibration: Calibration) -> dict[str, Any]:
    """The calibration as plain JSON (estimates with their intervals, the whole curve)."""

    def counts(which: Any) -> dict[str, Any]:
        return {
            "precision": dataclasses.asdict(which.precision),
            "recall": dataclasses.asdict(which.recall),
            "rejection": dataclasses.asdict(which.rejection),
        }

    return {
        "target": {"kind": calibration.target.kind.value, "value": calibration.target.value},
        "threshold": calibration.threshold,
        "target_met": calibration.target_met,
        "promised": counts(calibration.promised),
        "reached": counts(calibration.reached),
        "samples": calibration.samples,
        "answerable": calibration.answerable,
        "unanswerable": calibration.unanswerable,
        "warnings": list(calibration.warnings),
        "curve": [dataclasses.asdict(point) for point in calibration.curve],
    }
