"""The fleet view on a real Redis: exact merge across instances and across real
uvicorn worker processes."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import redis.asyncio as redis_asyncio

from tests.conftest import key_for
from wedsync_perf.keys import RedisKeys
from wedsync_perf.monitoring.fleet import FleetPublisher, FleetStore, hour_of_week_profile
from wedsync_perf.monitoring.recorder import Recorder
from wedsync_perf.monitoring.series import SeriesKey
from wedsync_perf.testing import free_port

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _store(redis: redis_asyncio.Redis, recorder: Recorder, fleet: str) -> FleetStore:
    return FleetStore(
        redis,
        edges=recorder.edges,
        window_s=recorder.window_s,
        retention_s=600,
        keys=RedisKeys(),
        fleet=fleet,
    )


async def test_instances_merge_exactly(redis: redis_asyncio.Redis) -> None:
    fleet = uuid.uuid4().hex
    clock = Clock(1_800_000_000.0)  # a Friday, 08:00 UTC
    rng = random.Random(4)
    everything: list[float] = []
    publishers = []
    for _ in range(3):
        recorder = Recorder(window_s=10, retention_s=600, clock=clock)
        for _ in range(2000):
            latency = rng.lognormvariate(math.log(0.03), 0.6)
            everything.append(latency)
            recorder.record("/weddings/{wedding_id}/timeline", "GET", 200, "critical", latency)
        publishers.append(FleetPublisher(recorder, _store(redis, recorder, fleet)))
    for publisher in publishers:
        assert await publisher.flush() == 1
    reader = publishers[0].store
    [window] = await reader.read(clock.now - 10, clock.now)
    merged = window.series[SeriesKey("/weddings/{wedding_id}/timeline", "GET", "2xx", "critical")]
    assert merged.count == 6000
    exact = sorted(everything)[math.floor(0.99 * (len(everything) - 1))]
    assert merged.quantile(0.99) == pytest.approx(exact, rel=0.01)
    # Publishing the same window again overwrites instead of double counting.
    await publishers[0].flush()
    [again] = await reader.read(clock.now - 10, clock.now)
    assert next(iter(again.series.values())).count == 6000


async def test_closed_windows_feed_the_hour_of_week_profile(redis: redis_asyncio.Redis) -> None:
    fleet = uuid.uuid4().hex
    clock = Clock(1_800_000_000.0)
    recorder = Recorder(window_s=10, retention_s=600, clock=clock)
    publisher = FleetPublisher(recorder, _store(redis, recorder, fleet))
    for _ in range(50):
        recorder.record("/x", "GET", 200, "standard", 0.01)
    await publisher.flush()
    clock.now += 10  # the window closes
    recorder.record("/x", "GET", 200, "standard", 0.01)
    await publisher.flush()
    await publisher.flush()  # a closed window is counted once, however often we flush
    profile = hour_of_week_profile(await publisher.store.hourly(["20270115"]))
    friday_8 = 4 * 24 + 8
    assert profile == {friday_8: {"standard": 5.0}}  # 50 requests in 10 s observed


async def test_multi_worker_uvicorn_reports_one_fleet(seeded_dsn: str, redis_url: str) -> None:
    port, token = free_port(), uuid.uuid4().hex
    env = {
        **os.environ,
        "DATABASE_URL": seeded_dsn,
        "REDIS_URL": redis_url,
        "WEDSYNC_PERF_METRICS_TOKEN": token,
        "WEDSYNC_PERF_FLEET": uuid.uuid4().hex,
        "WEDSYNC_PERF_FLUSH_INTERVAL_S": "0.5",
        "WEDSYNC_API_RATE_LIMIT": "100000/minute",
    }
    server = subprocess.Popen(  # noqa: ASYNC220 - a real multi-process server is the point
        [sys.executable, "-m", "wedsync_perf", "serve", "--port", str(port), "--workers", "2"],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            while True:
                assert server.poll() is None, "server exited during start-up"
                try:
                    if (await client.get("/health/ready")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "server not ready in 60 s"
                await _pause(0.2)
        sent = 300
        # A new connection per request lets the kernel spread them over both workers.
        for _ in range(sent):
            async with httpx.AsyncClient(base_url=base, timeout=5) as one:
                response = await one.get("/weddings/3/timeline", headers=key_for(1))
                assert response.status_code in (200, 404)
        auth = {"Authorization": f"Bearer {token}"}
        counted = 0
        instances: set[str] = set()
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            for _ in range(40):  # flushes happen every 0.5 s in each worker
                body = (await client.get("/perf/stats", headers=auth)).json()
                assert body["scope"] == "fleet"
                counted = sum(
                    r["count"]
                    for r in body["routes"]
                    if r["route"] == "/weddings/{wedding_id}/timeline"
                )
                if counted >= sent:
                    break
                await _pause(0.25)
        redis = redis_asyncio.Redis.from_url(redis_url)
        try:
            async for key in redis.scan_iter(match=f"wsp:f:{{{env['WEDSYNC_PERF_FLEET']}}}:w:*"):
                for field in await redis.hkeys(key):
                    instances.add(field.split(b"\x1f")[0].decode())
        finally:
            await redis.aclose()
        assert counted == sent
        assert len(instances) == 2, "both workers should have published"
    finally:
        server.terminate()
        server.wait(timeout=30)


async def _pause(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_settled_windows_compact_without_changing_totals(
    redis: redis_asyncio.Redis,
) -> None:
    fleet = uuid.uuid4().hex
    now = time.time()
    clock = Clock(now - 120)  # two minutes ago: long settled
    stores = []
    for instance in range(5):
        recorder = Recorder(window_s=10, retention_s=600, clock=clock)
        for i in range(100):
            recorder.record("/r", "GET", 200 if i % 10 else 500, "bulk", 0.001 * (i + instance))
        store = _store(redis, recorder, fleet)
        # Written directly: a publisher would (rightly) refuse a window this old.
        await store.publish(recorder.windows())
        stores.append(store)
    reader = stores[0]
    key = reader.window_key(clock.now - clock.now % 10)
    assert await redis.hlen(key) == 10  # 5 instances x 2 status classes
    before = await reader.read(clock.now - 10, now)
    assert await redis.hlen(key) == 2  # compacted to one field per series
    after = await reader.read(clock.now - 10, now)
    assert set(after[0].series) == set(before[0].series)
    for key, b in before[0].series.items():
        a = after[0].series[key]
        assert (a.count, a.quantile(0.99), a.buckets) == (b.count, b.quantile(0.99), b.buckets)
    assert sum(s.count for s in after[0].series.values()) == 500


async def test_publisher_refuses_windows_readers_may_have_compacted(
    redis: redis_asyncio.Redis,
) -> None:
    fleet = uuid.uuid4().hex
    clock = Clock(time.time() - 120)
    recorder = Recorder(window_s=10, retention_s=600, clock=clock)
    recorder.record("/r", "GET", 200, "bulk", 0.01)
    publisher = FleetPublisher(recorder, _store(redis, recorder, fleet))
    assert await publisher.flush() == 0
    assert publisher.late_windows == 1
