"""Per-key request rates (429 with Retry-After), the only module that knows `limits`.

Counts live in Redis when the service runs distributed with a Redis broker (every API replica
shares them), in this process's memory otherwise. Rates are written in `limits`' notation,
e.g. "100/second;2000/minute". If Redis cannot be reached, requests pass uncounted and the
operator is told in the log: searches keep working while the broker is down.
"""

from __future__ import annotations

import logging
import math
import time
from enum import StrEnum
from threading import Lock

from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from retrieval.errors import ConfigurationError, RateLimited

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 0.5
REDIS_BACKOFF_S = 5.0
"""After Redis failed, count nothing for this long instead of waiting on it per request."""


class RateClass(StrEnum):
    SEARCH = "search"
    INGEST = "ingest"


def parse_rates(text: str, *, setting: str) -> list[RateLimitItem]:
    """`limits` rate items from a setting; empty text means no limit."""
    if not text.strip():
        return []
    try:
        return list(parse_many(text))
    except (ValueError, LimitsConfigurationError) as exc:
        raise ConfigurationError(
            f"{setting}={text!r} is not a rate such as '100/second' or '100/second;2000/minute'"
        ) from exc


class RateLimiter:
    """One allowance per (rate class, caller) where the caller is an API key or a client."""

    def __init__(self, rates: dict[RateClass, list[RateLimitItem]], *, redis_url: str | None):
        self._rates = rates
        self._storage: Storage = (
            RedisStorage(
                redis_url,
                key_prefix="semsearch-rate",
                wrap_exceptions=True,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
            )
            if redis_url
            else MemoryStorage()
        )
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._skip_until = 0.0
        self._lock = Lock()

    def hit(self, rate_class: RateClass, caller: str) -> None:
        """Count one request; raise RateLimited when the caller is over any of its rates."""
        if not self._rates.get(rate_class) or time.monotonic() < self._skip_until:
            return
        try:
            for item in self._rates[rate_class]:
                if not self._limiter.hit(item, rate_class.value, caller):
                    reset_at = self._limiter.get_window_stats(item, rate_class.value, caller)[0]
                    raise RateLimited(
                        f"rate limit of {item} for {rate_class.value} requests reached; "
                        "retry after the time in Retry-After",
                        retry_after_s=max(1, math.ceil(reset_at - time.time())),
                    )
        except RateLimited:
            raise
        except Exception as exc:  # a broken counter must not stop searches
            with self._lock:
                self._skip_until = time.monotonic() + REDIS_BACKOFF_S
            logger.warning(
                "rate limits not counted for %.0f s: their store failed: %s", REDIS_BACKOFF_S, exc
            )
