"""Readiness reports each dependency, and a stopped one as not ready."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import api_settings, running
from wedsync_api.app import create_app
from wedsync_perf.embedded import embedded_redis

pytestmark = pytest.mark.integration


async def test_live_and_ready_pass(seeded_dsn: str, redis_url: str) -> None:
    app = create_app(api_settings(redis_url=redis_url), dsn=seeded_dsn)
    async with running(app) as client:
        live = await client.get("/health/live")
        assert live.status_code == 200
        assert live.headers["content-type"] == "application/health+json"
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert checks["postgresql:responseTime"][0]["status"] == "pass"
        assert checks["redis:responseTime"][0]["status"] == "pass"


async def test_stopped_redis_makes_ready_fail(seeded_dsn: str, tmp_path: Path) -> None:
    redis = embedded_redis(tmp_path / "doomed")
    app = create_app(api_settings(redis_url=redis.url), dsn=seeded_dsn)
    async with running(app) as client:
        assert (await client.get("/health/ready")).status_code == 200
        redis.stop()
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "fail"
        assert body["checks"]["redis:responseTime"][0]["status"] == "fail"
        assert body["checks"]["postgresql:responseTime"][0]["status"] == "pass"
        # Liveness does not depend on Redis: a cache outage must not restart pods.
        assert (await client.get("/health/live")).status_code == 200


async def test_unreachable_database_is_not_ready_and_routes_answer_503() -> None:
    # Port 1 on loopback: nothing listens there, connections are refused at once.
    app = create_app(api_settings(), dsn="postgresql://postgres@127.0.0.1:1/none")
    async with running(app) as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        check = ready.json()["checks"]["postgresql:responseTime"][0]
        assert check["status"] == "fail"
        assert "127.0.0.1" not in ready.text  # no internal addresses in probe output
        routed = await client.get("/suppliers/search", headers={"X-API-Key": "wsk_any"})
        assert routed.status_code == 503
        assert routed.headers["retry-after"] == "1"
