"""API keys: what a key is, how it is stored (hashed) and what it may do.

A key is `ssk_<key id>_<secret>`. The catalog keeps its id (shown in listings, used to revoke
it) and the SHA-256 of the whole token, never the token itself: the token is shown once, when
the key is created. A salted slow hash is for passwords people choose; these are 256 random
bits, where one SHA-256 is what a lookup by hash needs and all an attacker gets.

Scopes, each optionally limited to a list of collections:

    read   search, similarity, embeddings; read collections, documents, jobs, calibrations
    write  ingest and delete documents (and read their jobs)
    admin  create, change and delete collections, calibrate and apply; manage keys
           (an admin key limited to collections cannot manage keys)

A key that may not touch a collection at all is told that it does not exist (404), exactly as
for a missing one, so that a key for team A cannot learn the names of team B's collections.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from retrieval.errors import Forbidden, InvalidInput, NotFound

TOKEN_PREFIX = "ssk"
KEY_ID_BYTES = 6
SECRET_BYTES = 32
MAX_KEY_NAME_CHARS = 100
_TOKEN_PATTERN = re.compile(rf"^{TOKEN_PREFIX}_([0-9a-f]{{{2 * KEY_ID_BYTES}}})_[A-Za-z0-9_-]+$")


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


@dataclass(frozen=True)
class ApiKeyRecord:
    """A key as the catalog keeps it (without its secret)."""

    key_id: str
    name: str
    scopes: frozenset[Scope]
    collections: tuple[str, ...] | None
    """The collections it may touch; None: all of them."""
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class IssuedKey:
    """A key just created: the one moment its token is known."""

    record: ApiKeyRecord
    token: str
    token_hash: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(token: str) -> bool:
    """Whether `token` has the shape of a key (checked before any lookup)."""
    return _TOKEN_PATTERN.fullmatch(token) is not None


def issue_key(
    *,
    name: str,
    scopes: Iterable[Scope],
    collections: Iterable[str] | None,
    now: datetime,
) -> IssuedKey:
    """A fresh key; refuses an empty scope list or a name that is blank or too long."""
    chosen = frozenset(scopes)
    if not chosen:
        raise InvalidInput("a key needs at least one scope: read, write or admin")
    if not name.strip() or len(name) > MAX_KEY_NAME_CHARS or not name.isprintable():
        raise InvalidInput(f"a key's name must be 1 to {MAX_KEY_NAME_CHARS} printable characters")
    limited = None if collections is None else tuple(sorted(set(collections)))
    if limited == ():
        raise InvalidInput("a key limited to collections needs at least one collection")
    key_id = secrets.token_hex(KEY_ID_BYTES)
    token = f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
    record = ApiKeyRecord(
        key_id=key_id, name=name, scopes=chosen, collections=limited, created_at=now
    )
    return IssuedKey(record=record, token=token, token_hash=hash_token(token))


@dataclass(frozen=True)
class Grant:
    """What the caller of one request may do: a key's scopes, or everything when the service
    runs open (no key was ever created)."""

    key: ApiKeyRecord | None

    @property
    def is_open(self) -> bool:
        return self.key is None

    @property
    def identity(self) -> str:
        """Whose allowance a request spends (rate limits): the key id, or 'open'."""
        return "open" if self.key is None else self.key.key_id

    def sees(self, collection: str) -> bool:
        limited = None if self.key is None else self.key.collections
        return limited is None or collection in limited

    def has(self, scope: Scope) -> bool:
        return self.key is None or scope in self.key.scopes or Scope.ADMIN in self.key.scopes

    def require(self, scope: Scope, collection: str | None = None) -> None:
        """Raise unless the caller may do `scope` work (on `collection`, when one is named).

        A collection the key may not see answers NotFound with the catalog's own words.
        """
        if collection is not None and not self.sees(collection):
            raise NotFound(f"collection {collection!r} does not exist")
        if not self.has(scope):
            raise Forbidden(f"this API key lacks the {scope.value!r} scope")

    def require_unlimited_admin(self) -> None:
        """Managing keys needs an admin key that is not limited to collections."""
        self.require(Scope.ADMIN)
        if self.key is not None and self.key.collections is not None:
            raise Forbidden("managing API keys needs an admin key not limited to collections")
