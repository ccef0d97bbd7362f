"""How the Redis users of a process call it: through one circuit breaker, each call
bounded, driver errors as `BackendUnavailable`.

One `RedisGuard` (so one breaker) per process and Redis: the cache and the rate limiter
take its `breaker`, everything else (the fleet view, the alert lease, replica write
positions, readiness) calls through `call()`. When Redis stops answering, the first
failures open the breaker for every user at once; from then on a call costs nothing
(it is refused before any I/O) until the breaker's probe finds Redis back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from wedsync_perf.breaker import BreakerState, CircuitBreaker, ConsecutiveFailures
from wedsync_perf.caching.redis_errors import unavailable
from wedsync_perf.errors import BackendUnavailable, InvalidValue
from wedsync_perf.redis_client import create_redis, pool_size
from wedsync_perf.settings import PerfSettings

__all__ = ["RedisGuard", "guard_from_settings"]

T = TypeVar("T")


class RedisGuard:
    """`client`, the breaker every user of it shares, and the default bound of one call."""

    def __init__(
        self,
        client: Any,
        breaker: CircuitBreaker | None = None,
        *,
        timeout_s: float = 0.1,
    ) -> None:
        """`breaker` defaults to opening after 5 failures in a row, probing after 1 s."""
        if timeout_s <= 0:
            raise InvalidValue("timeout_s", timeout_s, "a positive number of seconds")
        self.client = client
        self.breaker = breaker or CircuitBreaker(ConsecutiveFailures(5), cooldown_s=1.0)
        self.timeout_s = timeout_s

    @property
    def available(self) -> bool:
        """False while the breaker is open or its probe is out."""
        return self.breaker.state is BreakerState.CLOSED

    def report(self) -> dict[str, Any]:
        """For `/perf/stats`: the breaker, and the pool's bound."""
        pool = getattr(self.client, "connection_pool", None)
        return {"breaker": self.breaker.state.value, "opened": self.breaker.opened,
                "max_connections": getattr(pool, "max_connections", None)}  # fmt: skip

    async def call(
        self,
        operation: str,
        run: Callable[[], Awaitable[T]],
        *,
        timeout_s: float | None = None,
    ) -> T:
        """`await run()` within `timeout_s` (default: the guard's). Raises
        `BackendUnavailable` at once while the breaker is open (`run` is not called),
        and when Redis fails or does not answer in time (counted by the breaker).
        `operation` names the call in the error's message."""
        if not self.breaker.allow():
            raise BackendUnavailable(f"redis {operation} skipped: circuit open")
        try:
            # asyncio.timeout, not wait_for: no extra task per call.
            async with asyncio.timeout(timeout_s if timeout_s is not None else self.timeout_s):
                with unavailable(operation):
                    result = await run()
        except TimeoutError as exc:
            self.breaker.failure()
            raise BackendUnavailable(f"redis {operation} timed out") from exc
        except BackendUnavailable:
            self.breaker.failure()
            raise
        self.breaker.success()
        return result


def guard_from_settings(
    url: str, settings: PerfSettings, *, concurrent_requests: int
) -> RedisGuard:
    """The process's Redis as the settings describe it: the client (`create_redis`, its
    pool `WEDSYNC_PERF_REDIS_MAX_CONNECTIONS` or `pool_size(concurrent_requests)`), and
    one breaker and per-call bound (`WEDSYNC_PERF_CACHE_TIMEOUT_MS`) for every user."""
    client = create_redis(
        url,
        max_connections=settings.redis_max_connections or pool_size(concurrent_requests),
        pool_timeout_s=settings.redis_pool_timeout_ms / 1000,
        connect_timeout_s=settings.redis_connect_timeout_ms / 1000,
        socket_timeout_s=settings.redis_socket_timeout_ms / 1000,
        health_check_interval_s=settings.redis_health_check_s,
    )
    breaker = CircuitBreaker(ConsecutiveFailures(5), cooldown_s=settings.redis_breaker_cooldown_s)
    return RedisGuard(client, breaker, timeout_s=settings.cache_timeout_ms / 1000)
