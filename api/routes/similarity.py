"""How similar two texts are, in the shape text-embeddings-inference serves."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.auth import SearchAccess, access
from api.deps import LimitsDep, SearcherDep
from api.rate_limit import RateClass
from api.schemas import SimilarityExplainRequest, SimilarityExplanation, SimilarityRequest
from api.strict_json import StrictJsonRoute
from retrieval.access import Scope

router = APIRouter(tags=["similarity"], route_class=StrictJsonRoute)


@router.post(
    "/similarity",
    operation_id="similarity",
    dependencies=[Depends(access(Scope.READ, RateClass.SEARCH))],
)
def similarity(body: SimilarityRequest, searcher: SearcherDep, limits: LimitsDep) -> list[float]:
    """One score per sentence: the cosine of the source sentence (as a query) and the sentence
    (as a stored chunk) under the model, the same number a collection on that model compares
    with its threshold in dense mode."""
    limits.check_query(body.inputs.source_sentence, top_k=None, where="inputs.source_sentence")
    return searcher.similarity(body.model, body.inputs.source_sentence, body.inputs.sentences)


@router.post("/similarity/explain", operation_id="explain_similarity")
def explain_similarity(
    body: SimilarityExplainRequest, searcher: SearcherDep, limits: LimitsDep, grant: SearchAccess
) -> SimilarityExplanation:
    """The score of two texts with each text as it was embedded (cleaned, and term-mapped
    when a collection is named): `a` as a query, `b` as a stored chunk, scored as /similarity
    does, or as the collection's search does."""
    if body.collection is not None:
        grant.require(Scope.READ, body.collection)
    limits.check_query(body.a, top_k=None, where="a")
    return SimilarityExplanation.from_pair(
        searcher.explain_pair(
            body.a, body.b, model_name=body.model, collection_name=body.collection
        )
    )
