"""Threshold calibration of a collection from labelled samples."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.auth import ReadAccess, SearchAccess
from api.deps import CalibratorDep, LimitsDep
from api.plots import calibration_png
from api.schemas import CalibrateRequest, CalibrationPublic
from api.strict_json import StrictJsonRoute
from retrieval.access import Scope
from retrieval.calibration import Target, TargetKind
from retrieval.calibrator import CalibrationReport, PairSample, QuerySample
from retrieval.catalog import CollectionMode
from retrieval.errors import NotFound

router = APIRouter(prefix="/collections/{name}", tags=["calibration"], route_class=StrictJsonRoute)


@router.post("/calibrate", operation_id="calibrate_collection")
def calibrate(
    name: str,
    body: CalibrateRequest,
    calibrator: CalibratorDep,
    limits: LimitsDep,
    grant: SearchAccess,
) -> CalibrationPublic:
    """Choose the collection's threshold from labelled samples run through its search.

    Returns the precision/recall curve, the chosen threshold, the precision and recall it
    promises on the samples and those it reached on held-out samples (cross-validation),
    with 95% intervals. `"apply": true` stores the threshold on the collection (admin scope).
    """
    if body.apply:
        grant.require(Scope.ADMIN, name)
    limits.check_top_k(body.top_k)
    for position, sample in enumerate(body.queries or []):
        limits.check_query(sample.query, top_k=None, where=f"queries.{position}.query")
    for position, pair in enumerate(body.pairs or []):
        limits.check_query(pair.a, top_k=None, where=f"pairs.{position}.a")
    target = _target(body)
    if body.queries is not None:
        report = calibrator.calibrate_queries(
            name,
            [QuerySample(query=q.query, relevant=tuple(q.relevant)) for q in body.queries],
            target,
            top_k=body.top_k,
            mode=CollectionMode(body.mode) if body.mode else None,
            apply=body.apply,
        )
    else:
        report = calibrator.calibrate_pairs(
            name,
            [PairSample(a=p.a, b=p.b, match=p.match) for p in body.pairs or []],
            target,
            apply=body.apply,
        )
    return CalibrationPublic.from_report(report)


@router.get("/calibration", operation_id="get_calibration")
def get_calibration(name: str, calibrator: CalibratorDep, _: ReadAccess) -> CalibrationPublic:
    """The collection's last calibration, with what changed since (`stale`)."""
    return CalibrationPublic.from_report(_kept(name, calibrator))


@router.get(
    "/calibration.png",
    operation_id="get_calibration_plot",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def get_calibration_plot(name: str, calibrator: CalibratorDep, _: ReadAccess) -> Response:
    """The precision/recall curve of the last calibration, the chosen threshold marked."""
    png = calibration_png(CalibrationPublic.from_report(_kept(name, calibrator)))
    return Response(content=png, media_type="image/png")


def _kept(name: str, calibrator: CalibratorDep) -> CalibrationReport:
    report = calibrator.report(name)
    if report is None:
        raise NotFound(
            f"collection {name!r} has not been calibrated: POST /collections/{name}/calibrate"
        )
    return report


def _target(body: CalibrateRequest) -> Target:
    if body.target.precision is not None:
        return Target(kind=TargetKind.PRECISION, value=body.target.precision)
    if body.target.recall is not None:
        return Target(kind=TargetKind.RECALL, value=body.target.recall)
    return Target()
