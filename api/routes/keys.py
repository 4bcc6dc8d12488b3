"""API keys: create, list, revoke (an admin key not limited to collections)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.auth import AdminAccess, AuthenticatorDep
from api.deps import CatalogDep
from api.schemas import KeyCreate, KeyCreated, KeyList, KeyPublic
from api.strict_json import StrictJsonRoute
from retrieval.access import Scope, issue_key
from retrieval.catalog import utc_now

router = APIRouter(prefix="/keys", tags=["keys"], route_class=StrictJsonRoute)


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_key")
def create_key(
    body: KeyCreate, catalog: CatalogDep, grant: AdminAccess, authenticator: AuthenticatorDep
) -> KeyCreated:
    """A new key; its `token` is in this answer only. The first key ends open access: from
    then on every request needs a key."""
    grant.require_unlimited_admin()
    issued = issue_key(
        name=body.name,
        scopes=[Scope(scope) for scope in body.scopes],
        collections=body.collections,
        now=utc_now(),
    )
    record = catalog.add_api_key(issued)
    authenticator.key_created()
    return KeyCreated(**KeyPublic.from_record(record).model_dump(), token=issued.token)


@router.get("", operation_id="list_keys")
def list_keys(catalog: CatalogDep, grant: AdminAccess) -> KeyList:
    """Every key, revoked ones included; never their tokens."""
    grant.require_unlimited_admin()
    keys = [KeyPublic.from_record(record) for record in catalog.list_api_keys()]
    return KeyList(keys=keys, count=len(keys))


@router.delete("/{key_id}", operation_id="revoke_key")
def revoke_key(key_id: str, catalog: CatalogDep, grant: AdminAccess) -> KeyPublic:
    """Revoke a key at once; it stays listed as revoked."""
    grant.require_unlimited_admin()
    return KeyPublic.from_record(catalog.revoke_api_key(key_id))
