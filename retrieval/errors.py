"""The errors semsearch raises, one hierarchy for every part of the service.

    SemsearchError
    ├── Unauthenticated no API key, or one that is unknown or revoked             -> HTTP 401
    ├── Forbidden       a valid key without the scope the operation needs         -> HTTP 403
    ├── NotFound        a collection, document or job that does not exist (or
    │                   that the caller's key may not see)                        -> HTTP 404
    ├── RateLimited     a key (or client) over its request rate; Retry-After      -> HTTP 429
    ├── Conflict        a name that is taken, a state that forbids the operation -> HTTP 409
    ├── InvalidInput    a request that is well-formed but cannot be honoured     -> HTTP 422
    ├── Unavailable     the catalog, the vector store or the broker cannot be
    │                   reached; nothing was changed, the call can be retried    -> HTTP 503
    └── ConfigurationError
                        settings that contradict each other; raised at start-up

Third-party errors (SQLAlchemy, qdrant-client, qdrant-edge, kombu) are translated into these
at one seam each (catalog.py, store/, the job queues) and chained with ``raise ... from``.
"""


class SemsearchError(Exception):
    """Base of every error semsearch raises on purpose."""


class Unauthenticated(SemsearchError):
    """Raised when a request carries no API key, or one that is unknown or revoked."""


class Forbidden(SemsearchError):
    """Raised when a valid API key lacks the scope an operation needs."""


class RateLimited(SemsearchError):
    """Raised when a caller spent its allowance; `retry_after_s` says when to come back."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotFound(SemsearchError):
    """Raised when a collection, document or job does not exist."""


class Conflict(SemsearchError):
    """Raised when a name is already taken or the current state forbids the operation."""


class InvalidInput(SemsearchError):
    """Raised when a request is well-formed but cannot be honoured (bad filter, bad text)."""


class Unavailable(SemsearchError):
    """Raised when a backing service (catalog, vector store, broker) cannot be reached."""


class ConfigurationError(SemsearchError):
    """Raised at start-up when settings contradict each other or name missing resources."""
