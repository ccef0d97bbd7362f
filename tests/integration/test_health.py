"""Readiness reports each dependency, and a stopped one as not ready."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import MONITORING, api_settings, running
from wedsync_api.app import create_app, services_of
from wedsync_perf.embedded import embedded_redis

pytestmark = pytest.mark.integration


async def test_live_and_ready_pass(seeded_dsn: str, redis_url: str) -> None:
    app = create_app(api_settings(redis_url=redis_url), dsn=seeded_dsn)
    async with running(app) as client:
        live = await client.get("/health/live")
        assert live.status_code == 200
        assert live.headers["content-type"] == "application/health+json"
        ready = await client.get("/health/ready", headers=MONITORING)
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert checks["postgresql:responseTime"][0]["status"] == "pass"
        assert checks["redis:responseTime"][0]["status"] == "pass"
        for local in (
            "pool:utilization",
            "eventloop:lag",
            "memory:utilization",
            "disk:utilization",
        ):
            assert checks[local][0]["status"] in ("pass", "warn"), local


async def test_a_stopped_redis_degrades_ready_to_warn(seeded_dsn: str, tmp_path: Path) -> None:
    redis = embedded_redis(tmp_path / "doomed")
    app = create_app(api_settings(redis_url=redis.url), dsn=seeded_dsn)
    async with running(app) as client:
        assert (await client.get("/health/ready")).status_code == 200
        await asyncio.to_thread(redis.stop)  # not on the loop: that would be real lag
        ready = await client.get("/health/ready", headers=MONITORING)
        # Shared by every instance: pulling them all out would turn degraded into down.
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "warn"
        assert body["checks"]["redis:responseTime"][0]["status"] == "warn"
        assert body["checks"]["postgresql:responseTime"][0]["status"] == "pass"
        # Liveness does not depend on Redis: a cache outage must not restart pods.
        assert (await client.get("/health/live")).status_code == 200


async def test_unreachable_database_warns_and_routes_answer_503() -> None:
    # Port 1 on loopback: nothing listens there, connections are refused at once.
    app = create_app(api_settings(), dsn="postgresql://postgres@127.0.0.1:1/none")
    async with running(app) as client:
        ready = await client.get("/health/ready", headers=MONITORING)
        assert ready.status_code == 200
        assert ready.json()["status"] == "warn"
        check = ready.json()["checks"]["postgresql:responseTime"][0]
        assert check["status"] == "warn"
        assert "127.0.0.1" not in ready.text  # no internal addresses in probe output
        routed = await client.get("/suppliers/search", headers={"X-API-Key": "wsk_any"})
        assert routed.status_code == 503
        assert routed.headers["retry-after"] == "1"


async def test_a_saturated_pool_fails_this_instance(seeded_dsn: str) -> None:
    from wedsync_perf.priorities import PriorityClass

    app = create_app(api_settings(pool_max_size=2, pool_reserved_critical=0), dsn=seeded_dsn)
    async with running(app) as client:
        pool = services_of(app).pool
        release = asyncio.Event()

        async def hold() -> None:
            async with pool.acquire(PriorityClass.CRITICAL):
                await release.wait()

        holders = [asyncio.create_task(hold()) for _ in range(2)]
        waiter = asyncio.create_task(hold())  # a third request queues for a connection
        for _ in range(10):
            await asyncio.sleep(0)
            if pool.in_use == 2 and sum(pool.waiting().values()):
                break
        ready = await client.get("/health/ready", headers=MONITORING)
        assert ready.status_code == 503
        assert ready.json()["checks"]["pool:utilization"][0]["status"] == "fail"
        release.set()
        await asyncio.gather(*holders, waiter)
        assert (await client.get("/health/ready")).status_code == 200
