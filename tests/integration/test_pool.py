"""Priority lanes on a real PostgreSQL, and recovery when the server drops connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import asyncpg
import pytest

from tests.conftest import MONITORING, api_settings, key_for, running
from wedsync_api.app import create_app, services_of
from wedsync_perf.database import LanedPool, PoolTimeout
from wedsync_perf.priorities import PriorityClass

pytestmark = pytest.mark.integration
C, S, B = PriorityClass.CRITICAL, PriorityClass.STANDARD, PriorityClass.BULK


@pytest.fixture
async def lanes(seeded_dsn: str) -> AsyncIterator[LanedPool]:
    raw = await asyncpg.create_pool(seeded_dsn, min_size=0, max_size=4)
    assert raw is not None
    pool = LanedPool(raw, size=4, reserved_critical=1, max_bulk=2, acquire_timeout_s=0.2)
    yield pool
    await pool.close()


async def test_bulk_is_capped_and_critical_keeps_its_reserve(lanes: LanedPool) -> None:
    async with AsyncExitStack() as held:
        for _ in range(2):
            await held.enter_async_context(lanes.acquire(B))
        with pytest.raises(PoolTimeout, match="bulk"):
            async with lanes.acquire(B, timeout_s=0.05):
                pass
        await held.enter_async_context(lanes.acquire(S))  # 3 of 4: the non-critical limit
        with pytest.raises(PoolTimeout, match="standard"):
            async with lanes.acquire(S, timeout_s=0.05):
                pass
        async with lanes.acquire(C) as conn:  # the reserved connection
            assert await conn.fetchval("SELECT 1") == 1
    assert lanes.in_use == 0
    assert lanes.stats.timeouts[B] == 1
    assert lanes.stats.timeouts[S] == 1


async def test_waiters_are_served_critical_first(lanes: LanedPool) -> None:
    order: list[str] = []
    release = asyncio.Event()

    async def hold(priority: PriorityClass) -> None:
        async with lanes.acquire(priority, timeout_s=5):
            await release.wait()

    holders = [asyncio.create_task(hold(C)) for _ in range(4)]
    while lanes.in_use < 4:  # noqa: ASYNC110 - yield until the holders hold: state, not time
        await asyncio.sleep(0)

    async def want(priority: PriorityClass, name: str) -> None:
        async with lanes.acquire(priority, timeout_s=5):
            order.append(name)

    waiters = [
        asyncio.create_task(want(B, "bulk")),
        asyncio.create_task(want(S, "standard")),
        asyncio.create_task(want(C, "critical")),
    ]
    while sum(lanes.waiting().values()) < 3:  # noqa: ASYNC110 - until all three queue
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*holders, *waiters)
    assert order[0] == "critical"
    assert order.index("standard") < order.index("bulk")


async def test_saturated_bulk_lane_gives_503_while_critical_routes_answer(
    seeded_dsn: str, db: asyncpg.Connection
) -> None:
    wedding = await db.fetchval("SELECT min(id) FROM weddings WHERE tenant_id = 1")
    app = create_app(
        api_settings(pool_max_size=4, pool_reserved_critical=1, pool_max_bulk=1,
                     pool_acquire_timeout_ms=100),
        dsn=seeded_dsn,
    )  # fmt: skip
    async with running(app) as client:
        pool: LanedPool = services_of(app).pool
        async with pool.acquire(B):  # an import holds the whole bulk lane
            body = b"name,category,region,lat,lon,price_band\nX,dj,wales,51.5,-3.2,2\n"
            shed = await client.post(
                "/imports/suppliers", content=body,
                headers={**key_for(1), "Content-Type": "text/csv"},
            )  # fmt: skip
            assert shed.status_code == 503
            assert shed.headers["retry-after"] == "1"
            timeline = await client.get(f"/weddings/{wedding}/timeline", headers=key_for(1))
            assert timeline.status_code == 200
        assert pool.stats.timeouts[B] == 1


async def test_pool_recovers_after_the_server_kills_its_connections(
    seeded_dsn: str, db: asyncpg.Connection
) -> None:
    # Validate on every acquire: the production default (connections idle ≥ 1 s) would
    # make this test wait a second for the same effect.
    app = create_app(api_settings(pool_max_size=4, pool_validate_idle_ms=0), dsn=seeded_dsn)
    async with running(app) as client:
        for n in range(1, 9):  # open several connections
            await client.get(f"/suppliers/{n}", headers=key_for(1))
        pids = [
            r["pid"]
            for r in await db.fetch(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = 'wedsync_api'"
            )
        ]
        assert pids
        await db.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
        # pg_terminate_backend only signals: wait until those backends have exited, as
        # they have after a real restart (a condition, not a fixed sleep).
        for _ in range(500):
            alive = await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
            )
            if alive == 0:
                break
        assert alive == 0
        statuses = [
            (await client.get(f"/suppliers/search?page={n}", headers=key_for(1))).status_code
            for n in range(1, 21)
        ]
    assert statuses == [200] * 20


async def test_queueing_delay_is_the_oldest_non_bulk_waiter_s_wait(seeded_dsn: str) -> None:
    now = [100.0]
    raw = await asyncpg.create_pool(seeded_dsn, min_size=0, max_size=2)
    assert raw is not None
    lanes = LanedPool(raw, size=2, reserved_critical=0, max_bulk=1, clock=lambda: now[0])
    release = asyncio.Event()

    async def hold(priority: PriorityClass) -> None:
        async with lanes.acquire(priority, timeout_s=5):
            await release.wait()

    try:
        holders = [asyncio.create_task(hold(S)) for _ in range(2)]
        while lanes.in_use < 2:  # noqa: ASYNC110 - until both hold: state, not time
            await asyncio.sleep(0)
        assert lanes.queueing_delay_s() == 0.0
        waiters = [asyncio.create_task(hold(B))]
        while sum(lanes.waiting().values()) < 1:  # noqa: ASYNC110
            await asyncio.sleep(0)
        now[0] += 3.0
        assert lanes.queueing_delay_s() == 0.0  # bulk waiting on its capped lane: not a queue
        waiters.append(asyncio.create_task(hold(S)))
        while sum(lanes.waiting().values()) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0)
        now[0] += 0.25
        assert lanes.queueing_delay_s() == 0.25
        release.set()
        await asyncio.gather(*holders, *waiters)
        assert lanes.queueing_delay_s() == 0.0
    finally:
        await lanes.close()


async def test_bulk_slots_held_past_a_bound_are_counted_and_raise_their_timeout(
    seeded_dsn: str,
) -> None:
    now = [100.0]
    raw = await asyncpg.create_pool(seeded_dsn, min_size=0, max_size=3)
    assert raw is not None
    lanes = LanedPool(raw, size=3, reserved_critical=1, max_bulk=1, clock=lambda: now[0],
                      statement_timeout_s={B: 42.0})  # fmt: skip
    try:
        async with lanes.acquire(B) as bulk, lanes.acquire(S) as standard:
            assert await bulk.fetchval("SHOW statement_timeout") == "42s"
            assert await standard.fetchval("SHOW statement_timeout") == "0"  # the default
            assert lanes.held_longer_than(B, 10.0) == 0
            now[0] += 11.0
            assert lanes.held_longer_than(B, 10.0) == 1
            assert lanes.held_longer_than(S, 10.0) == 1
        assert lanes.held_longer_than(B, 10.0) == 0
        async with lanes.acquire(S) as again:  # RESET ALL on release undid the bulk bound
            assert await again.fetchval("SHOW statement_timeout") == "0"
    finally:
        await lanes.close()


async def test_readiness_warns_while_the_bulk_lane_is_full_and_imports_wait(
    seeded_dsn: str,
) -> None:
    app = create_app(api_settings(pool_max_size=4, pool_reserved_critical=1, pool_max_bulk=1),
                     dsn=seeded_dsn)  # fmt: skip
    async with running(app) as client:
        pool: LanedPool = services_of(app).pool
        assert (await client.get("/health/ready", headers=MONITORING)).json()["checks"][
            "pool:bulk"
        ][0]["status"] == ("pass")
        async with pool.acquire(B):
            waiter = asyncio.create_task(pool.acquire(B, timeout_s=5).__aenter__())
            while not pool.waiting()[B.value]:  # noqa: ASYNC110 - until it queues: state
                await asyncio.sleep(0)
            ready = (await client.get("/health/ready", headers=MONITORING)).json()
            assert ready["checks"]["pool:bulk"][0]["status"] == "warn"
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        assert (pool.in_use, pool.in_use_bulk) == (0, 0)
