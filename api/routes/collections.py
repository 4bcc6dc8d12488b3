"""Collections: create, list, read, change, delete."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import CatalogDep, CollectionsDep
from api.schemas import (
    CollectionCreate,
    CollectionList,
    CollectionPublic,
    CollectionUpdate,
)
from retrieval.collections import NewCollection

router = APIRouter(prefix="/collections", tags=["collections"])


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_collection")
def create_collection(
    body: CollectionCreate, collections: CollectionsDep, catalog: CatalogDep
) -> CollectionPublic:
    record = collections.create(
        NewCollection(
            name=body.name,
            threshold=body.threshold,
            top_k=body.top_k,
            term_map=body.term_map,
            chunk_max_tokens=body.chunking.max_tokens,
            chunk_overlap_sentences=body.chunking.overlap_sentences,
        )
    )
    return CollectionPublic.from_record(record, document_count=0)


@router.get("", operation_id="list_collections")
def list_collections(catalog: CatalogDep) -> CollectionList:
    records = catalog.list_collections()
    collections = [
        CollectionPublic.from_record(record, document_count=catalog.document_count(record.name))
        for record in records
    ]
    return CollectionList(collections=collections, count=len(collections))


@router.get("/{name}", operation_id="get_collection")
def get_collection(name: str, catalog: CatalogDep) -> CollectionPublic:
    record = catalog.get_collection(name)
    return CollectionPublic.from_record(record, document_count=catalog.document_count(name))


@router.patch("/{name}", operation_id="update_collection")
def update_collection(
    name: str, body: CollectionUpdate, collections: CollectionsDep, catalog: CatalogDep
) -> CollectionPublic:
    record = collections.update(
        name, threshold=body.threshold, top_k=body.top_k, term_map=body.term_map
    )
    return CollectionPublic.from_record(record, document_count=catalog.document_count(name))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_collection")
def delete_collection(name: str, collections: CollectionsDep) -> Response:
    collections.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
