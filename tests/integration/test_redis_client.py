"""The Redis client the library builds, and the guard its users call it through, on a
private redis-server the tests kill, pause and restart: a full pool is a bounded wait
and then an ordinary connection error (never `MaxConnectionsError`), a restart does not
surface as an error, a hung server costs a call its timeout and, once the breaker is
open, nothing."""

from __future__ import annotations

import asyncio

import pytest
import redis.exceptions

from wedsync_perf.breaker import CircuitBreaker, ConsecutiveFailures
from wedsync_perf.errors import BackendUnavailable, InvalidValue
from wedsync_perf.redis_client import BACKGROUND_CONNECTIONS, create_redis, pool_size
from wedsync_perf.redis_guard import RedisGuard
from wedsync_perf.testing import RedisProcess

pytestmark = pytest.mark.integration

HANG_GUARD_S = 30  # a hang fails the test; no figure here is a latency assertion


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_pool_is_the_admitted_requests_plus_background_work() -> None:
    assert pool_size(64) == 64 + BACKGROUND_CONNECTIONS
    with pytest.raises(InvalidValue, match="concurrent_requests"):
        pool_size(0)
    with pytest.raises(InvalidValue, match="socket_timeout_s"):
        create_redis("redis://127.0.0.1:1/0", max_connections=1, socket_timeout_s=0)


async def test_a_full_pool_is_a_bounded_wait_then_a_connection_error(
    private_redis: RedisProcess,
) -> None:
    client = create_redis(private_redis.url, max_connections=1, pool_timeout_s=0.05)
    guard = RedisGuard(client)
    pool = client.connection_pool
    try:
        held = await pool.get_connection()  # the only connection, taken
        async with asyncio.timeout(HANG_GUARD_S):
            with pytest.raises(redis.exceptions.ConnectionError) as caught:
                await client.ping()
            with pytest.raises(BackendUnavailable):
                await guard.call("ping", client.ping)
        assert type(caught.value) is redis.exceptions.ConnectionError  # not MaxConnections
        await pool.release(held)
        assert await guard.call("ping", client.ping)
    finally:
        await client.aclose()


async def test_a_restarted_server_is_not_an_error_for_pooled_connections(
    private_redis: RedisProcess,
) -> None:
    client = create_redis(private_redis.url, max_connections=4)
    try:
        await asyncio.gather(*(client.set(f"k{i}", i) for i in range(4)))  # 4 pooled
        private_redis.kill()
        private_redis.start()
        async with asyncio.timeout(HANG_GUARD_S):
            for i in range(8):  # every pooled connection is stale: none surfaces
                assert await client.get(f"k{i % 4}") is None  # a new, empty server
    finally:
        await client.aclose()


async def test_a_hung_server_costs_the_timeout_then_nothing_until_it_answers(
    private_redis: RedisProcess,
) -> None:
    clock = Clock()
    client = create_redis(private_redis.url, max_connections=4, socket_timeout_s=0.1)
    breaker = CircuitBreaker(ConsecutiveFailures(3), cooldown_s=1.0, clock=clock)
    guard = RedisGuard(client, breaker, timeout_s=0.1)
    calls = 0

    async def ping() -> bool:
        nonlocal calls
        calls += 1
        return bool(await client.ping())

    try:
        assert await guard.call("ping", ping)
        private_redis.pause()
        async with asyncio.timeout(HANG_GUARD_S):
            for _ in range(3):  # each bounded by the guard's timeout
                with pytest.raises(BackendUnavailable, match="timed out"):
                    await guard.call("ping", ping)
            assert not guard.available
            with pytest.raises(BackendUnavailable, match="circuit open"):
                await guard.call("ping", ping)
        assert calls == 4  # refused before any I/O: the open breaker cost nothing
        private_redis.resume()
        clock.now += 1.5  # the cool-down: the next call is the probe
        async with asyncio.timeout(HANG_GUARD_S):
            assert await guard.call("ping", ping)
        assert guard.available
    finally:
        private_redis.resume()
        await client.aclose()
