"""API keys → tenants, and per-key rate limiting.

Keys are looked up by SHA-256, never stored in clear. A resolved key is trusted for
`auth_cache_seconds` so the hot path costs a dict lookup, not a query; revoking a key
therefore takes effect within that bound.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from wedsync_perf.database import LanedPool
from wedsync_perf.keys import RedisKeys

__all__ = ["Authenticator", "RateLimiter", "Tenant", "authenticate", "hash_key", "require_tenant"]

API_KEY_HEADER = "X-API-Key"
_api_key_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    key_id: str  # short, non-secret handle of the key (first hash bytes) for limits/logs


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class Authenticator:
    """Resolves API keys against `api_keys`, with a small bounded TTL cache."""

    def __init__(self, pool: LanedPool, ttl_s: float, max_entries: int = 10_000) -> None:
        self._pool = pool
        self._ttl = ttl_s
        self._max = max_entries
        self._cache: OrderedDict[bytes, tuple[Tenant, float]] = OrderedDict()

    async def tenant_for(self, key: str) -> Tenant | None:
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        tenant_id = await self._pool.fetchval(
            "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", digest
        )
        if tenant_id is None:
            self._cache.pop(digest, None)
            return None
        tenant = Tenant(id=tenant_id, key_id=digest[:6].hex())
        self._cache[digest] = (tenant, now + self._ttl)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return tenant


class RateLimiter:
    """Moving-window limit per API key, in Redis when configured (shared by every
    instance), else in process memory."""

    def __init__(
        self, limit: str, redis_url: str | None, redis: Any = None, *, keys: RedisKeys | None = None
    ) -> None:
        """`redis`: the app's client, whose pool the limiter then shares (and whose
        closing closes the limiter's connections too); `keys`: whose prefix its keys get."""
        self.item: RateLimitItem = parse(limit)
        uri = _limits_uri(redis_url)
        # limits' async Redis storage defaults to coredis; we ship redis-py.
        options: dict[str, Any] = {}
        if uri.startswith("async+redis"):
            options["implementation"] = "redispy"
            options["key_prefix"] = (keys or RedisKeys()).rate_limit_prefix()
            if redis is not None:
                options["connection_pool"] = redis.connection_pool
        storage = storage_from_string(uri, **options)
        if not isinstance(storage, Storage):  # only async+ schemes are ever built here
            raise TypeError(f"expected an async limits storage, got {type(storage).__name__}")
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(self.storage)

    async def check(self, key_id: str) -> None:
        if await self._limiter.hit(self.item, "api-key", key_id):
            return
        stats = await self._limiter.get_window_stats(self.item, "api-key", key_id)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise HTTPException(
            status_code=429,
            detail=f"rate limit of {self.item} per API key exceeded",
            headers={"Retry-After": str(retry_after)},
        )


def _limits_uri(redis_url: str | None) -> str:
    if not redis_url:
        return "async+memory://"
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url


async def require_tenant(
    request: Request, api_key: str | None = Security(_api_key_scheme)
) -> Tenant:
    """FastAPI dependency: authenticate, then rate-limit, before any handler runs."""
    tenant = await authenticate(request.app.state, api_key)
    await request.app.state.rate_limiter.check(tenant.key_id)
    return tenant


async def authenticate(state: Any, api_key: str | None) -> Tenant:
    """The key's tenant, or the 401 to answer (also used by the cached-read fast path,
    which must refuse exactly as the routes do)."""
    if not api_key:
        raise HTTPException(
            status_code=401,
            detail=f"missing {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    tenant: Tenant | None = await state.authenticator.tenant_for(api_key)
    if tenant is None:
        raise HTTPException(
            status_code=401,
            detail="unknown or revoked API key",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    return tenant
