"""Who is calling: the request's API key resolved into a Grant, and the rate it may spend.

Routes declare what they need with `Depends(access(scope, rate))`; a route whose collection is
not in its path (creating one, reading a job) checks the grant it receives itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from threading import Lock
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.rate_limit import RateClass, RateLimiter
from retrieval.access import Grant, Scope, hash_token, looks_like_token
from retrieval.catalog import Catalog
from retrieval.errors import Unauthenticated

OPEN_RECHECK_S = 2.0
"""While no key exists, how long the answer is trusted: a key created by `semsearch keys
create` in another process closes an open service within this time."""

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `semsearch keys create`, sent as `Authorization: Bearer "
    "ssk_...`. Needed once any key exists; a service that never had one runs open.",
)


class Authenticator:
    """Turns a bearer token into a Grant: open while no key was ever created."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._keys_exist = False
        self._open_checked_at = -OPEN_RECHECK_S
        self._lock = Lock()

    def grant(self, token: str | None) -> Grant:
        if not self._keys_created():
            # Open: a token changes nothing. OpenAI's SDK will not start without one, and its
            # tutorials pass any string ("sk-...", "ollama"): they work unchanged.
            return Grant(key=None)
        if token is None:
            raise Unauthenticated(
                "an API key is required: send 'Authorization: Bearer <key>' "
                "(keys are made with `semsearch keys create`)"
            )
        key = self._catalog.find_api_key(hash_token(token)) if looks_like_token(token) else None
        if key is None or not key.active:
            raise Unauthenticated("the API key is unknown or revoked")
        return Grant(key=key)

    def key_created(self) -> None:
        """A key was created through this process: close open access at once."""
        with self._lock:
            self._keys_exist = True

    def _keys_created(self) -> bool:
        """Once true, true for good: keys are revoked, never deleted."""
        with self._lock:
            if self._keys_exist or time.monotonic() - self._open_checked_at < OPEN_RECHECK_S:
                return self._keys_exist
        exist = self._catalog.any_api_key_created()
        with self._lock:
            self._keys_exist = exist
            self._open_checked_at = time.monotonic()
        return exist


def access(scope: Scope | None, rate: RateClass | None = None) -> Callable[..., Grant]:
    """A dependency: the caller's grant, checked for `scope` (None: any valid key) on the
    path's collection (if the path names one) and counted against its `rate`."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Grant:
        grant = get_authenticator(request).grant(credentials.credentials if credentials else None)
        if scope is not None:
            grant.require(scope, request.path_params.get("name"))
        if rate is not None:
            limiter: RateLimiter = request.app.state.rate_limiter
            caller = grant.identity
            if grant.is_open and request.client is not None:
                caller = f"client:{request.client.host}"
            limiter.hit(rate, caller)
        return grant

    return dependency


def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]
KeyAccess = Annotated[Grant, Depends(access(None))]
ReadAccess = Annotated[Grant, Depends(access(Scope.READ))]
WriteAccess = Annotated[Grant, Depends(access(Scope.WRITE))]
AdminAccess = Annotated[Grant, Depends(access(Scope.ADMIN))]
SearchAccess = Annotated[Grant, Depends(access(Scope.READ, RateClass.SEARCH))]
IngestAccess = Annotated[Grant, Depends(access(Scope.WRITE, RateClass.INGEST))]
