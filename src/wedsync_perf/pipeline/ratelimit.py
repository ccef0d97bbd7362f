"""Per-API-key rate limits on the `limits` library: a moving window, in Redis when one
is configured (one limit for every instance), else in this process's memory."""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from wedsync_perf.errors import ConfigError
from wedsync_perf.keys import RedisKeys

__all__ = ["RateLimiter"]

_NAMESPACE = "api-key"


class RateLimiter:
    def __init__(
        self,
        limit: str,
        redis_url: str | None = None,
        redis: Any = None,
        *,
        keys: RedisKeys | None = None,
    ) -> None:
        """`limit` in `limits` notation (`1200/minute`). `redis`: a redis-py asyncio
        client whose connection pool the limiter then shares (closing the client closes
        the limiter's connections too). `keys`: whose prefix the limiter's keys get.
        Raises `ConfigError` for a malformed limit."""
        try:
            self.item: RateLimitItem = parse(limit)
        except ValueError:
            raise ConfigError("rate limit", "expected a limit like '1200/minute'") from None
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
        self._limiter = MovingWindowRateLimiter(storage)
        self.refusal = orjson.dumps({"detail": f"rate limit of {self.item} per API key exceeded"})

    async def retry_after(self, key_id: str) -> int | None:
        """Count one request of `key_id`: None when allowed, else the seconds until the
        window has room again (at least 1)."""
        if await self._limiter.hit(self.item, _NAMESPACE, key_id):
            return None
        stats = await self._limiter.get_window_stats(self.item, _NAMESPACE, key_id)
        return max(1, math.ceil(stats.reset_time - time.time()))


def _storage_uri(redis_url: str | None) -> str:
    if not redis_url:
        return "async+memory://"
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url
