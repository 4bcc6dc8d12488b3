"""The embedding models this service offers."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import KeyAccess
from api.deps import ServicesDep
from api.schemas import ModelList, ModelPublic
from api.strict_json import StrictJsonRoute

router = APIRouter(prefix="/models", tags=["models"], route_class=StrictJsonRoute)


@router.get("", operation_id="list_models")
def list_models(services: ServicesDep, _: KeyAccess) -> ModelList:
    """Every registered model with what it reads; a collection chooses one at creation."""
    models = services.models
    listed = [
        ModelPublic(
            name=spec.name,
            engine=spec.engine.value,
            dimension=spec.dimension,
            max_tokens=spec.max_tokens,
            default_threshold=spec.default_threshold,
            languages=spec.languages,
            multilingual=spec.multilingual,
            query_prefix=spec.query_prefix,
            passage_prefix=spec.passage_prefix,
            aliases=list(spec.aliases),
            source=spec.source,
            default=spec.name == models.default.name,
            loaded=models.is_loaded(spec.name),
        )
        for spec in models.specs
    ]
    return ModelList(models=listed, count=len(listed))
