"""A Redis that restarts comes back empty: on a wedding day the watch notices the
warmed day's marker is gone and warms the day again, into the shared tier (not only
this process's local one), without anyone asking."""

from __future__ import annotations

import asyncio
from datetime import date

import asyncpg
import pytest
import redis.asyncio as redis_asyncio

from tests.conftest import api_settings, key_for, running
from wedsync_api.app import create_app, services_of
from wedsync_perf.testing import RedisProcess

pytestmark = pytest.mark.integration
HANG_GUARD_S = 30


async def keys_in(url: str) -> int:
    """Cache entries (`wsp:c:{tenant}:k:…`) in the Redis at `url`."""
    client = redis_asyncio.Redis.from_url(url)
    try:
        return len([k async for k in client.scan_iter(match="wsp:c:*:k:*", count=1000)])
    finally:
        await client.aclose()


async def test_a_restarted_empty_redis_is_warmed_again(
    private_redis: RedisProcess, seeded_dsn: str, db: asyncpg.Connection
) -> None:
    day: date = await db.fetchval(
        "SELECT wedding_date FROM weddings WHERE tenant_id = 1 AND status <> 'cancelled'"
        " GROUP BY wedding_date ORDER BY count(*) DESC, wedding_date LIMIT 1"
    )
    wedding = await db.fetchval(
        "SELECT min(id) FROM weddings WHERE tenant_id = 1 AND wedding_date = $1"
        " AND status <> 'cancelled'",
        day,
    )
    settings = api_settings(redis_url=private_redis.url, warm_dates=day.isoformat())
    app = create_app(settings, dsn=seeded_dsn)
    async with running(app) as client:
        services = services_of(app)
        rewarm = services.rewarm
        assert rewarm is not None
        assert rewarm.days == {day}
        rewarm.today = lambda: day  # it is the wedding day
        assert await rewarm.check() == []  # warmed at startup: the marker is there
        warmed = await keys_in(private_redis.url)
        assert warmed > 1

        private_redis.stop()
        private_redis.start()  # empty: nothing persisted
        assert await keys_in(private_redis.url) == 0
        async with asyncio.timeout(HANG_GUARD_S):
            while not await rewarm.check():  # noqa: ASYNC110 - the breaker may hold calls back at first
                await asyncio.sleep(0.2)
        assert rewarm.rewarms == 1
        assert await keys_in(private_redis.url) == warmed  # the shared tier is full again
        assert await rewarm.check() == []  # marked again: not warmed twice

        cache = services.cache
        before = cache.stats.of("wedding_timeline").loader_calls
        response = await client.get(f"/weddings/{wedding}/timeline", headers=key_for(1))
        assert response.status_code == 200
        assert cache.stats.of("wedding_timeline").loader_calls == before


async def test_past_days_are_forgotten(private_redis: RedisProcess, seeded_dsn: str) -> None:
    day = date(2025, 7, 12)
    settings = api_settings(redis_url=private_redis.url, warm_dates=day.isoformat())
    app = create_app(settings, dsn=seeded_dsn)
    async with running(app):
        rewarm = services_of(app).rewarm
        assert rewarm is not None
        rewarm.today = lambda: date(2025, 7, 13)
        private_redis.stop()
        private_redis.start()
        assert await rewarm.check() == []  # the day is over: nothing to warm
        assert rewarm.days == frozenset()
