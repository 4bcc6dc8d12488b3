"""Search a collection."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SearcherDep
from api.schemas import SearchRequest, SearchResponse

router = APIRouter(prefix="/collections/{name}", tags=["search"])


@router.post("/search", operation_id="search")
def search(name: str, body: SearchRequest, searcher: SearcherDep) -> SearchResponse:
    """Top-k chunks scoring at or above the threshold; no hit is a valid, empty answer."""
    result = searcher.search(
        name,
        body.query,
        top_k=body.top_k,
        threshold=body.threshold,
        metadata_filter=body.filter,
    )
    return SearchResponse.from_result(result)
