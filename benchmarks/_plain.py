"""`bench-faults`' peer: the reference API as a service is usually built — no
performance layer (`WEDSYNC_API_LAYER=off`), and a rate limiter that is `limits` on
redis-py with their defaults: no timeout, no breaker, no fallback, so a Redis fault is
the request's fault. Everything else (routes, authentication, data) is the same app.

Served by `wedsync_perf.serving.serve("benchmarks._plain:create_plain_app",
factory=True)`."""

from __future__ import annotations

from fastapi import FastAPI
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from wedsync_api.app import create_app
from wedsync_api.settings import ApiSettings
from wedsync_perf.pipeline import AccessMiddleware, RateLimiter


class PlainLimiter(RateLimiter):
    """`limits`' moving window on Redis, its errors left to the request."""

    def __init__(self, limit: str, redis_url: str) -> None:
        super().__init__(limit)  # in memory: only for the refusal body
        storage = storage_from_string("async+" + redis_url, implementation="redispy")
        self._plain = MovingWindowRateLimiter(storage)
        self._item = parse(limit)

    async def retry_after(self, key_id: str) -> int | None:
        if await self._plain.hit(self._item, "wedsync", key_id):
            return None
        return 1


def create_plain_app() -> FastAPI:
    settings = ApiSettings()
    app = create_app(settings)
    if settings.redis_url:
        for middleware in app.user_middleware:
            if middleware.cls is AccessMiddleware:  # type: ignore[comparison-overlap]
                middleware.kwargs["limiter"] = PlainLimiter(settings.rate_limit, settings.redis_url)
    return app
