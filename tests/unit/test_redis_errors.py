"""Redis driver errors become `BackendUnavailable` at the adapters (the backend, the
invalidation bus), and the cache skips the backend on that error only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis.exceptions

from wedsync_perf.caching import Cache, InvalidationBus, LocalTier, MemoryBackend, RedisBackend
from wedsync_perf.errors import BackendUnavailable, WedsyncPerfError
from wedsync_perf.keys import RedisKeys

DRIVER_ERRORS = [
    redis.exceptions.ConnectionError("Error 111 connecting to 10.0.0.7:6379"),
    redis.exceptions.TimeoutError("Timeout reading from socket"),
    redis.exceptions.ResponseError("OOM command not allowed"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),
]


class BrokenRedis:
    """A redis-py client whose every command raises `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error

    def register_script(self, script: str) -> Callable[..., Any]:
        return self._fail

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return self._fail


CALLS: dict[str, Callable[[RedisBackend], Any]] = {
    "get": lambda b: b.get("k"),
    "set": lambda b: b.set("k", b"v", 1.0),
    "delete": lambda b: b.delete("k"),
    "tag_versions": lambda b: b.tag_versions(["t"]),
    "bump": lambda b: b.bump(["{a}:t", "{b}:t"], 10.0),
    "acquire": lambda b: b.acquire("k:lock", 1.0),
    "release": lambda b: b.release("k:lock", "token"),
}


@pytest.mark.parametrize("error", DRIVER_ERRORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("method", list(CALLS))
async def test_every_backend_method_raises_backend_unavailable(
    method: str, error: Exception
) -> None:
    backend = RedisBackend(BrokenRedis(error))
    with pytest.raises(BackendUnavailable) as caught:
        await CALLS[method](backend)
    assert caught.value.__cause__ is error
    assert isinstance(caught.value, WedsyncPerfError)
    assert "10.0.0.7" not in str(caught.value)  # the driver's message stays in the cause


@pytest.mark.parametrize("error", DRIVER_ERRORS, ids=lambda e: type(e).__name__)
async def test_the_bus_publish_raises_backend_unavailable(error: Exception) -> None:
    bus = InvalidationBus(BrokenRedis(error), LocalTier(), RedisKeys())
    with pytest.raises(BackendUnavailable) as caught:
        await bus.publish(keys=["k"])
    assert caught.value.__cause__ is error


async def test_the_cache_skips_a_backend_that_is_unavailable() -> None:
    cache = Cache(RedisBackend(BrokenRedis(redis.exceptions.ConnectionError())), secret=b"s" * 16)

    async def load() -> str:
        return "loaded"

    assert await cache.get_or_set("k", load, tenant=1) == "loaded"
    assert await cache.get("k", tenant=1, default="none") == "none"
    assert cache.stats.of("default").backend_errors > 0


async def test_the_cache_does_not_swallow_other_errors() -> None:
    class Buggy(MemoryBackend):
        async def get(self, key: str, max_bytes: int | None = None) -> bytes | None:
            raise KeyError(key)  # a bug in a backend, not an outage

    cache = Cache(Buggy(), secret=b"s" * 16)
    with pytest.raises(KeyError):
        await cache.get("k", tenant=1)
    assert cache.stats.of("default").backend_errors == 0
