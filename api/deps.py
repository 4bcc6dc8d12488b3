"""FastAPI dependencies: the services that the lifespan built, as Annotated aliases.

They only read attributes, so they are coroutines: FastAPI runs a plain function dependency
in its thread pool, a hand-off per dependency per request that cost more than the lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ingest.queue import JobQueue
from retrieval.calibrator import Calibrator
from retrieval.catalog import Catalog
from retrieval.collections import CollectionManager
from retrieval.limits import InputLimits
from retrieval.search import Searcher
from retrieval.services import Services


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_job_queue(request: Request) -> JobQueue:
    job_queue: JobQueue = request.app.state.job_queue
    return job_queue


async def get_catalog(services: Annotated[Services, Depends(get_services)]) -> Catalog:
    return services.catalog


async def get_searcher(services: Annotated[Services, Depends(get_services)]) -> Searcher:
    return services.searcher


async def get_calibrator(services: Annotated[Services, Depends(get_services)]) -> Calibrator:
    return services.calibrator


async def get_limits(services: Annotated[Services, Depends(get_services)]) -> InputLimits:
    return services.settings.limits


async def get_collections(
    services: Annotated[Services, Depends(get_services)],
) -> CollectionManager:
    return services.collections


ServicesDep = Annotated[Services, Depends(get_services)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
SearcherDep = Annotated[Searcher, Depends(get_searcher)]
CollectionsDep = Annotated[CollectionManager, Depends(get_collections)]
CalibratorDep = Annotated[Calibrator, Depends(get_calibrator)]
LimitsDep = Annotated[InputLimits, Depends(get_limits)]
