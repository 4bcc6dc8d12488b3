"""Search a collection."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import SearchAccess
from api.deps import LimitsDep, SearcherDep
from api.schemas import SearchRequest, SearchResponse
from api.strict_json import StrictJsonRoute
from retrieval.catalog import CollectionMode
from retrieval.filters import parse_filter
from retrieval.units import SearchUnit

router = APIRouter(prefix="/collections/{name}", tags=["search"], route_class=StrictJsonRoute)


@router.post("/search", operation_id="search")
def search(
    name: str, body: SearchRequest, searcher: SearcherDep, limits: LimitsDep, _: SearchAccess
) -> SearchResponse:
    """Top-k chunks scoring at or above the threshold; no hit is a valid, empty answer."""
    limits.check_query(body.query, top_k=body.top_k)
    query_filter = (
        parse_filter(body.filter, max_depth=limits.max_filter_depth)
        if body.filter is not None
        else None
    )
    result = searcher.search(
        name,
        body.query,
        top_k=body.top_k,
        threshold=body.threshold,
        query_filter=query_filter,
        group_by_document=body.group_by == "document",
        mode=CollectionMode(body.mode) if body.mode else None,
        unit=SearchUnit(body.unit),
    )
    return SearchResponse.from_result(result)
