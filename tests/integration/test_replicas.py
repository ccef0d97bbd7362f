"""Replica routing against a real streaming replica (a private primary + `pg_basebackup`
standby started for this module), with replay paused and resumed to make it lag."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis.asyncio as redis_asyncio

from wedsync_perf.database import LanedPool
from wedsync_perf.database.replicas import ReplicaRouter, WritePositions
from wedsync_perf.keys import RedisKeys
from wedsync_perf.testing import free_port
from wedsync_perf.testing_replication import StreamingPair, streaming_pair


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def pair() -> Iterator[StreamingPair]:
    with streaming_pair() as started:
        yield started


async def laned(url: str) -> LanedPool:
    raw = await asyncpg.create_pool(url, min_size=0, max_size=4)
    assert raw is not None
    return LanedPool(raw, size=4, reserved_critical=1, acquire_timeout_s=2.0)


async def wait_for_replay(replica_url: str, primary_url: str) -> None:
    """Poll (a condition, not a sleep-and-hope) until the replica has replayed the
    primary's current position; fail after 20 s."""
    primary = await asyncpg.connect(primary_url)
    replica = await asyncpg.connect(replica_url)
    try:
        target = await primary.fetchval("SELECT pg_current_wal_lsn()")
        async with asyncio.timeout(20):
            while await replica.fetchval("SELECT pg_last_wal_replay_lsn()") < target:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    finally:
        await primary.close()
        await replica.close()


async def set_replay(replica_url: str, paused: bool) -> None:
    conn = await asyncpg.connect(replica_url)
    try:
        if paused:
            await conn.execute("SELECT pg_wal_replay_pause()")
            async with asyncio.timeout(20):
                state = "SELECT pg_get_wal_replay_pause_state()"
                while await conn.fetchval(state) != "paused":  # noqa: ASYNC110 - server state
                    await asyncio.sleep(0.02)
        else:
            await conn.execute("SELECT pg_wal_replay_resume()")
    finally:
        await conn.close()


@pytest.fixture
async def router(
    pair: StreamingPair, redis_url: str
) -> AsyncIterator[tuple[ReplicaRouter, FakeClock]]:
    setup = await asyncpg.connect(pair.primary_url)
    await setup.execute("CREATE TABLE IF NOT EXISTS notes (tenant int, body text)")
    await setup.close()
    await wait_for_replay(pair.replica_url, pair.primary_url)
    redis = redis_asyncio.Redis.from_url(redis_url)
    clock = FakeClock()
    positions = WritePositions(redis, keys=RedisKeys(f"test-{uuid.uuid4().hex[:8]}"), ttl_s=60)
    routing = ReplicaRouter(
        await laned(pair.primary_url),
        {"replica-1": await laned(pair.replica_url)},
        positions,
        max_lag_s=5.0,
        clock=clock,
    )
    await routing.refresh()
    yield routing, clock
    await set_replay(pair.replica_url, paused=False)
    await routing.close()
    await routing.primary.close()
    await redis.aclose()


async def served_by_replica(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT pg_is_in_recovery()"))


async def test_reads_never_miss_the_tenants_own_write(
    pair: StreamingPair, router: tuple[ReplicaRouter, FakeClock]
) -> None:
    routing, _ = router
    async with routing.read(1) as conn:  # nothing written yet: the replica serves
        assert await served_by_replica(conn)

    await set_replay(pair.replica_url, paused=True)
    body = uuid.uuid4().hex
    async with routing.write(1) as conn:
        await conn.execute("INSERT INTO notes VALUES (1, $1)", body)
    await routing.refresh()

    async with routing.read(1) as conn:  # the replica has not replayed it: primary
        assert not await served_by_replica(conn)
        assert await conn.fetchval("SELECT count(*) FROM notes WHERE body = $1", body) == 1
    assert routing.counters.fallbacks["behind"] == 1
    async with routing.read(2) as conn:  # another tenant wrote nothing: replica is fine
        assert await served_by_replica(conn)

    await set_replay(pair.replica_url, paused=False)
    await wait_for_replay(pair.replica_url, pair.primary_url)
    await routing.refresh()
    async with routing.read(1) as conn:  # caught up: back to the replica, row visible
        assert await served_by_replica(conn)
        assert await conn.fetchval("SELECT count(*) FROM notes WHERE body = $1", body) == 1


async def test_a_replica_over_the_lag_bound_is_skipped(
    pair: StreamingPair, router: tuple[ReplicaRouter, FakeClock]
) -> None:
    routing, clock = router
    await set_replay(pair.replica_url, paused=True)
    primary = await asyncpg.connect(pair.primary_url)
    await primary.execute("INSERT INTO notes VALUES (99, 'other tenant')")
    await primary.close()
    clock.now += 10  # the primary moved on 10 s ago; the replica is still where it was
    await routing.refresh()
    replica = routing.replicas[0]
    assert replica.healthy
    assert replica.lag_s >= 10 > routing.max_lag_s
    async with routing.read(3) as conn:
        assert not await served_by_replica(conn)
    assert routing.counters.fallbacks["lagging"] == 1

    await set_replay(pair.replica_url, paused=False)
    await wait_for_replay(pair.replica_url, pair.primary_url)
    await routing.refresh()
    assert replica.lag_s == 0.0  # an idle primary shows no lag
    async with routing.read(3) as conn:
        assert await served_by_replica(conn)


async def test_a_dead_replica_or_redis_sends_reads_to_the_primary(
    pair: StreamingPair, redis_url: str
) -> None:
    dead = await laned(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    redis = redis_asyncio.Redis.from_url(redis_url)
    routing = ReplicaRouter(
        await laned(pair.primary_url),
        {"gone": dead},
        WritePositions(redis, keys=RedisKeys("test-dead")),
    )
    await routing.refresh()
    assert not routing.replicas[0].healthy
    async with routing.read(1) as conn:
        assert not await served_by_replica(conn)
    assert routing.counters.fallbacks["down"] == 1
    await routing.close()
    await routing.primary.close()
    await redis.aclose()

    unreachable = redis_asyncio.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    routing = ReplicaRouter(
        await laned(pair.primary_url),
        {"replica-1": await laned(pair.replica_url)},
        WritePositions(unreachable, keys=RedisKeys()),
    )
    await routing.refresh()
    assert routing.replicas[0].healthy
    async with routing.read(1) as conn:  # cannot prove freshness: primary
        assert not await served_by_replica(conn)
    assert routing.counters.fallbacks["positions_unavailable"] == 1
    async with routing.write(1) as conn:  # the write succeeds; its position is unknown
        await conn.execute("INSERT INTO notes VALUES (1, 'x')")
    assert routing.counters.fallbacks["error"] == 1
    await routing.close()
    await routing.primary.close()
    await unreachable.aclose()


def test_settings_that_could_break_read_your_writes_are_refused() -> None:
    class Dummy:
        def register_script(self, _: str) -> None:
            return None

    with pytest.raises(ValueError, match="ttl_s"):
        ReplicaRouter(
            object(),  # type: ignore[arg-type]
            {},
            WritePositions(Dummy(), keys=RedisKeys(), ttl_s=5),
            max_lag_s=5,
        )
    with pytest.raises(ValueError, match="WritePositions"):
        ReplicaRouter(object(), {"r": object()}, None)  # type: ignore[arg-type, dict-item]


async def test_the_api_serves_a_tenants_reads_from_the_primary_until_its_write_is_replayed(
    pair: StreamingPair, redis_url: str
) -> None:
    from tests.conftest import TEST_SEED, api_settings, key_for, running
    from wedsync_api.app import create_app, services_of
    from wedsync_api.db import migrate
    from wedsync_api.seed import SeedPlan, seed
    from wedsync_perf.testing import temporary_database, with_database

    async with temporary_database(pair.primary_url, prefix="wedsync_replica") as dsn:
        await migrate(dsn)
        conn = await asyncpg.connect(dsn)
        await seed(conn, SeedPlan(scale=0.005, seed=TEST_SEED))
        wedding = await conn.fetchval("SELECT id FROM weddings WHERE tenant_id = 1 LIMIT 1")
        await conn.close()
        replica_dsn = with_database(pair.replica_url, dsn.rsplit("/", 1)[1])
        await wait_for_replay(pair.replica_url, pair.primary_url)
        settings = api_settings(redis_url=redis_url, replica_urls=replica_dsn)
        app = create_app(settings, dsn=dsn)
        async with running(app) as client:
            routing: ReplicaRouter = services_of(app).router
            missing = f"/imports/{uuid.uuid4()}"  # an uncached read that reaches the database
            assert (await client.get(missing, headers=key_for(1))).status_code == 404
            assert routing.replicas[0].reads == 1

            await set_replay(pair.replica_url, paused=True)
            try:
                posted = await client.post(
                    f"/weddings/{wedding}/messages",
                    json={"sender": "planner", "body": "doors at four"},
                    headers=key_for(1),
                )
                assert posted.status_code == 201
                await routing.refresh()
                assert (await client.get(missing, headers=key_for(1))).status_code == 404
                assert routing.counters.fallbacks["behind"] == 1  # tenant 1: the primary
                assert (await client.get(missing, headers=key_for(2))).status_code == 404
                assert routing.replicas[0].reads == 2  # tenant 2 wrote nothing: replica
            finally:
                await set_replay(pair.replica_url, paused=False)
