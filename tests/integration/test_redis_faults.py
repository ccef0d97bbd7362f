"""The API while its Redis is killed and restarted, hung (SIGSTOP) and resumed, or out
of pool connections — on a private redis-server of each test's own, PostgreSQL up:

- no request answers 500; whatever is refused is a 503 or 429 with `Retry-After`;
- critical routes are served (Redis is a cache and a counter, not a source of truth);
- the background users (fleet flush, alert lease, invalidation bus) say they are
  degraded, in readiness, instead of raising; readiness itself stays 200 ("warn");
- once Redis answers again, every user goes back to it.

Waits are on conditions, each under a generous hang guard: nothing here asserts a
latency figure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
import redis.asyncio as redis_asyncio

from tests.conftest import MONITORING, api_settings, key_for, running
from wedsync_api.app import create_app, services_of
from wedsync_api.services import Services
from wedsync_perf.caching import Cache, InvalidationBus, LocalTier, RedisBackend
from wedsync_perf.keys import RedisKeys
from wedsync_perf.redis_client import create_redis
from wedsync_perf.settings import PerfSettings, load_settings
from wedsync_perf.testing import RedisProcess

pytestmark = pytest.mark.integration

HANG_GUARD_S = 30.0
KEY = key_for(1)
REFUSED = {429, 503}


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `condition` until it holds; fail after the hang guard."""
    try:
        async with asyncio.timeout(HANG_GUARD_S):
            while not await condition():  # noqa: ASYNC110 - server state, not time
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"not within {HANG_GUARD_S:g} s: {what}")


@pytest.fixture
async def paths(db: asyncpg.Connection) -> dict[str, list[str]]:
    wedding = await db.fetchval("SELECT id FROM weddings WHERE tenant_id = 1 ORDER BY id LIMIT 1")
    supplier = await db.fetchval("SELECT id FROM suppliers ORDER BY id LIMIT 1")
    return {
        "critical": [f"/weddings/{wedding}/timeline", f"/weddings/{wedding}/vendors"],
        "standard": [f"/weddings/{wedding}", f"/suppliers/{supplier}"],
    }


@asynccontextmanager
async def api(
    server: RedisProcess, dsn: str, **perf: object
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    settings = load_settings(PerfSettings, flush_interval_s=0.2, window_s=1.0, **perf)
    app = create_app(api_settings(redis_url=server.url), dsn=dsn, perf=settings)
    async with running(app) as client:
        yield client, services_of(app)


async def burst(
    client: httpx.AsyncClient, paths: dict[str, list[str]], rounds: int = 5
) -> list[tuple[str, httpx.Response]]:
    """Every path `rounds` times, all at once."""
    every = [(kind, path) for kind, group in paths.items() for path in group] * rounds
    answers = await asyncio.gather(*(client.get(path, headers=KEY) for _, path in every))
    return [(kind, answer) for (kind, _), answer in zip(every, answers, strict=True)]


def assert_degraded_gracefully(
    answers: list[tuple[str, httpx.Response]], overloaded: bool = False
) -> None:
    """No 5xx but 503, every refusal with Retry-After, critical work served. With
    `overloaded` (a burst far beyond what the machine serves at once) a critical request
    may also be refused by admission, the pool or its deadline — for the load, not for
    Redis — so only most of them must be served."""
    statuses = [answer.status_code for _, answer in answers]
    assert all(status < 500 or status == 503 for status in statuses), statuses
    for _, answer in answers:
        if answer.status_code in REFUSED:
            assert answer.headers.get("retry-after"), answer
    critical = [answer.status_code for kind, answer in answers if kind == "critical"]
    if not overloaded:
        assert set(critical) == {200}, critical  # PostgreSQL is up: critical work is served
        return
    assert set(critical) <= {200, 503}, critical
    assert critical.count(200) > len(critical) / 2, critical


async def readiness(client: httpx.AsyncClient) -> dict[str, str]:
    ready = await client.get("/health/ready", headers=MONITORING)
    assert ready.status_code == 200  # Redis trouble never pulls the instance
    return {name: checks[0]["status"] for name, checks in ready.json()["checks"].items()}


async def redis_users_degraded(client: httpx.AsyncClient, paths: dict[str, list[str]]) -> None:
    """Traffic keeps flowing (it is what the fleet flush publishes) until readiness
    shows every background user of Redis degraded."""

    async def degraded() -> bool:
        assert_degraded_gracefully(await burst(client, paths, rounds=1))
        checks = await readiness(client)
        return all(checks[name] == "warn" for name in (
            "redis:responseTime", "redis:invalidationBus", "redis:fleetFlush",
            "redis:alertLease"))  # fmt: skip

    await eventually(degraded, "readiness shows the Redis users degraded")


async def back_on_redis(
    client: httpx.AsyncClient, services: Services, paths: dict[str, list[str]]
) -> None:
    """Every check passes again, and a request is counted in Redis, not in-process."""

    async def recovered() -> bool:
        before = services.limiter.fallbacks
        assert_degraded_gracefully(await burst(client, paths, rounds=1))
        checks = await readiness(client)
        redis_checks = [status for name, status in checks.items() if name.startswith("redis:")]
        return services.limiter.fallbacks == before and set(redis_checks) == {"pass"}

    await eventually(recovered, "every Redis user back on Redis")


FAULTS = {  # how to break the server, and how to mend it
    "killed-then-restarted": (RedisProcess.kill, RedisProcess.start),  # back empty
    "hung-then-resumed": (RedisProcess.pause, RedisProcess.resume),  # SIGSTOP, SIGCONT
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_the_api_through_a_redis_fault(
    private_redis: RedisProcess, seeded_dsn: str, paths: dict[str, list[str]], fault: str
) -> None:
    cause, mend = FAULTS[fault]
    async with api(private_redis, seeded_dsn) as (client, services):
        assert_degraded_gracefully(await burst(client, paths))
        cause(private_redis)
        try:
            assert_degraded_gracefully(await burst(client, paths))
            await redis_users_degraded(client, paths)
            assert services.redis_guard is not None
            assert not services.redis_guard.available  # one breaker, open for every user
            assert services.limiter.breaker is services.redis_guard.breaker
            assert services.limiter.fallbacks > 0
            stats = (await services.monitor.summary(60.0))["redis"]  # as /perf/stats shows it
            assert stats["breaker"] != "closed"
            assert stats["bus_connected"] is False
            assert stats["alert_lease"] == "unavailable"
        finally:
            mend(private_redis)
        await back_on_redis(client, services, paths)
        assert_degraded_gracefully(await burst(client, paths))


async def test_redis_pool_exhausted(
    private_redis: RedisProcess, seeded_dsn: str, paths: dict[str, list[str]]
) -> None:
    async with api(private_redis, seeded_dsn, redis_max_connections=2) as (client, services):
        # Far more concurrent requests than connections: they queue for one, boundedly.
        assert_degraded_gracefully(await burst(client, paths, rounds=25), overloaded=True)
        assert services.redis is not None
        pool = services.redis.connection_pool
        held = [await pool.get_connection() for _ in range(2)]  # none left for the app
        try:
            for _ in range(3):
                assert_degraded_gracefully(await burst(client, paths, rounds=10))
            assert services.limiter.fallbacks > 0  # the limiter counted in-process
        finally:
            for connection in held:
                await pool.release(connection)
        await back_on_redis(client, services, paths)


async def test_the_bus_turns_the_local_tier_off_while_redis_is_hung_or_gone(
    private_redis: RedisProcess,
) -> None:
    client = redis_asyncio.Redis.from_url(private_redis.url)
    local = LocalTier()
    bus = InvalidationBus(client, local, RedisKeys("bus"), heartbeat_s=0.2)
    bus.start()

    async def connected() -> bool:
        return bus.connected.is_set() and local.enabled

    async def off() -> bool:
        return not bus.connected.is_set() and not local.enabled and len(local) == 0

    try:
        await eventually(connected, "the bus subscribed")
        local.put("k", "v", 60.0, (), local.sequence)
        private_redis.pause()  # the socket stays open; nothing answers
        await eventually(off, "a silent subscription counts as disconnected")
        private_redis.resume()
        await eventually(connected, "the bus back after SIGCONT")
        private_redis.kill()
        await eventually(off, "a killed server turns the local tier off")
        private_redis.start()
        await eventually(connected, "the bus back after a restart")
    finally:
        await bus.stop()
        await client.aclose()


async def test_an_invalidation_redis_did_not_take_is_sent_again_once_it_answers(
    private_redis: RedisProcess,
) -> None:
    client = create_redis(private_redis.url, max_connections=4)
    writer = Cache(RedisBackend(client), secret=b"s" * 16, keys=RedisKeys("inv"))
    other = Cache(RedisBackend(client), secret=b"s" * 16, keys=RedisKeys("inv"))  # a peer
    try:
        await writer.set("k", "v1", tenant=1, tags=["w"])
        assert await other.get("k", tenant=1) == "v1"
        private_redis.pause()
        try:
            async with asyncio.timeout(HANG_GUARD_S):
                await writer.invalidate("w", tenant=1)  # the bump times out: kept
        finally:
            private_redis.resume()
        # The entry survived the pause; the writer never serves it again, and its first
        # read after Redis answers sends the invalidation, for every process.
        assert await writer.get("k", tenant=1) is None
        assert await other.get("k", tenant=1) is None
    finally:
        await client.aclose()
