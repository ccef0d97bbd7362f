"""Per-API-key rate limits on the `limits` library: a moving window, in Redis when one
is configured (one limit for every instance), else in this process's memory.

A Redis that is down, hung or out of connections must not turn into refused or failed
requests: every shared check is bounded by `timeout_s` and goes through a circuit
breaker, and while Redis does not answer the limiter counts in this process instead,
against `local_share` of the limit (this instance's share of the fleet's traffic). When
the breaker's probe succeeds, counting goes back to Redis. What a key spent in the
shared window before the outage is not carried into the local one, nor back: for the
length of an outage a key may get up to its local share more than the limit.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import orjson
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from wedsync_perf.breaker import CircuitBreaker
from wedsync_perf.errors import ConfigError
from wedsync_perf.keys import RedisKeys

__all__ = ["RateLimiter"]

_log = logging.getLogger(__name__)
_NAMESPACE = "api-key"


class RateLimiter:
    def __init__(
        self,
        limit: str,
        redis_url: str | None = None,
        redis: Any = None,
        *,
        keys: RedisKeys | None = None,
        timeout_s: float = 0.1,
        local_share: float = 1.0,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """`limit` in `limits` notation (`1200/minute`). `redis`: a redis-py asyncio
        client whose connection pool the limiter then shares (closing the client closes
        the limiter's connections too). `keys`: whose prefix the limiter's keys get.
        `timeout_s` bounds each shared check; `local_share` (0–1] is the fraction of
        the limit this process enforces on its own while Redis is unavailable.
        Raises `ConfigError` for a malformed limit or share."""
        try:
            self.item: RateLimitItem = parse(limit)
        except ValueError:
            raise ConfigError("rate limit", "expected a limit like '1200/minute'") from None
        if not 0 < local_share <= 1:
            raise ConfigError("rate limit local share", "expected a fraction in (0, 1]")
        uri = _storage_uri(redis_url)
        options: dict[str, Any] = {}
        if uri.startswith("async+redis"):
            options["implementation"] = "redispy"  # limits defaults to coredis
            options["key_prefix"] = (keys or RedisKeys()).rate_limit_prefix()
            if redis is not None:
                options["connection_pool"] = redis.connection_pool
        storage = storage_from_string(uri, **options)
        if not isinstance(storage, Storage):  # only async+ schemes are ever built here
            raise TypeError(f"expected an async limits storage, got {type(storage).__name__}")
        self.storage = storage
        self.shared = not isinstance(storage, MemoryStorage)
        self._limiter = MovingWindowRateLimiter(storage)
        local_amount = max(1, math.floor(self.item.amount * local_share))
        self._local_item = type(self.item)(local_amount, self.item.multiples)
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self.timeout_s = timeout_s
        self.breaker = breaker or CircuitBreaker(cooldown_s=1.0)
        self.fallbacks = 0  # checks answered by the local limiter because Redis did not
        self.refusal = orjson.dumps({"detail": f"rate limit of {self.item} per API key exceeded"})

    async def retry_after(self, key_id: str) -> int | None:
        """Count one request of `key_id`: None when allowed, else the seconds until the
        window has room again (at least 1). Never raises for the storage's sake."""
        if not self.shared:
            return await _check(self._limiter, self.item, key_id)
        if self.breaker.allow():
            try:
                async with asyncio.timeout(self.timeout_s):
                    answer = await _check(self._limiter, self.item, key_id)
            except Exception as exc:  # any storage fault: count here instead
                opened = self.breaker.opened
                self.breaker.failure()
                if self.breaker.opened != opened:  # once per outage, not per request
                    _log.warning("rate limits counted in-process: Redis %s", type(exc).__name__)
            else:
                self.breaker.success()
                return answer
        self.fallbacks += 1
        return await _check(self._local, self._local_item, key_id)


async def _check(limiter: MovingWindowRateLimiter, item: RateLimitItem, key_id: str) -> int | None:
    if await limiter.hit(item, _NAMESPACE, key_id):
        return None
    stats = await limiter.get_window_stats(item, _NAMESPACE, key_id)
    return max(1, math.ceil(stats.reset_time - time.time()))


def _storage_uri(redis_url: str | None) -> str:
    if not redis_url:
        return "async+memory://"
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url
