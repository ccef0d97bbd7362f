"""Shared fixtures: a real PostgreSQL (DATABASE_URL or embedded), a seeded throw-away
database for the session, and the reference API wired to it in-process."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as redis_asyncio
from fastapi import FastAPI

from wedsync_api.app import create_app
from wedsync_api.db import migrate
from wedsync_api.seed import SeedPlan, demo_api_key, seed
from wedsync_api.settings import ApiSettings
from wedsync_perf import testing_postgres
from wedsync_perf.testing import (
    RedisProcess,
    free_port,
    postgres_server_url,
    redis_server_url,
    temporary_database,
    with_database,
)
from wedsync_perf.testing_postgres import PostgresProcess

# Every app a test starts (in-process or as a server) names and seals cache entries alike.
# A fresh secret per session: a shared Redis outlives test runs, and entries a previous
# run cached (for another database) must never be found by this one.
os.environ.setdefault("WEDSYNC_PERF_CACHE_SECRET", f"test-cache-{uuid.uuid4().hex}")
os.environ.setdefault("WEDSYNC_PERF_CACHE_KEYS", "q8jVqBM3Hq5oy5mF2o0bVw3Hj0x8qVQb1xv7yDd4oXw=")
# Readiness details, /metrics and /perf/stats need it (tests that mean "unset" say so).
MONITORING_TOKEN = os.environ.setdefault("WEDSYNC_PERF_METRICS_TOKEN", f"test-{uuid.uuid4().hex}")
MONITORING = {"Authorization": f"Bearer {MONITORING_TOKEN}"}

TEST_SEED = 11
TEST_SCALE = 0.02  # 400 suppliers, 40 venues, 1,000 weddings, 2 tenants


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def server_url(data_dir: Path) -> str:
    return postgres_server_url(data_dir)


@pytest.fixture(scope="session")
def redis_url(data_dir: Path) -> Iterator[str]:
    url, server = redis_server_url(data_dir)
    yield url
    if server is not None:
        server.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of the test's own on a free port, which it may stop and start."""
    server = RedisProcess(free_port(), tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PostgresProcess]:
    """A PostgreSQL of the module's own on a free port, which its tests may stop,
    restart and kill (never the shared server)."""
    with testing_postgres.private_postgres() as server:
        yield server


@pytest.fixture(scope="module")
async def private_seeded_dsn(private_postgres: PostgresProcess) -> str:
    admin = await asyncpg.connect(private_postgres.url)
    try:
        await admin.execute("CREATE DATABASE wedsync")
    finally:
        await admin.close()
    dsn = with_database(private_postgres.url, "wedsync")
    await migrate_and_seed(dsn)
    return dsn


@pytest.fixture
def private_dsn(private_postgres: PostgresProcess, private_seeded_dsn: str) -> str:
    """The seeded database on `private_postgres`, its server running (a test that failed
    mid-outage may have left it down)."""
    private_postgres.ensure_started()
    return private_seeded_dsn


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def seeded_dsn(server_url: str) -> AsyncIterator[str]:
    async with temporary_database(server_url) as dsn:
        await migrate_and_seed(dsn)
        yield dsn


async def migrate_and_seed(dsn: str) -> None:
    await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        await seed(conn, SeedPlan(scale=TEST_SCALE, seed=TEST_SEED))
    finally:
        await conn.close()


@pytest.fixture
async def db(seeded_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(seeded_dsn)
    yield conn
    await conn.close()


def api_settings(**overrides: object) -> ApiSettings:
    """Settings independent of the caller's environment (no REDIS_URL leaking in)."""
    values: dict[str, object] = {
        "database_url": None,
        "redis_url": None,
        "rate_limit": "100000/minute",
    }
    values.update(overrides)
    return ApiSettings(**values)


@asynccontextmanager
async def running(
    app: FastAPI, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give an in-process client to it. Without
    `raise_app_exceptions` an unhandled error is the 500 a real client would see."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://wedsync.test") as client:
            yield client


@pytest.fixture(scope="session")
async def client(seeded_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(api_settings(), dsn=seeded_dsn)) as c:
        yield c


def key_for(tenant_id: int) -> dict[str, str]:
    return {"X-API-Key": demo_api_key(TEST_SEED, tenant_id)}


@pytest.fixture
def promtool() -> str:
    """PROMTOOL (set by `make test`), the venv's copy, or one on PATH — else a failure:
    what Prometheus reads is checked by the real tool or the test does not pass."""
    import shutil
    import sys

    venv_copy = Path(sys.executable).parent.parent / "tools" / "promtool"
    for candidate in (os.environ.get("PROMTOOL"), str(venv_copy), shutil.which("promtool")):
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.fail("promtool not found: run `make tools` (Debian package prometheus) or set PROMTOOL")


@asynccontextmanager
async def served_api(env: dict[str, str]) -> AsyncIterator[str]:
    """`wedsync-perf serve` in a subprocess on a free port with `env` (on top of this
    process's environment); yields its base URL once it is ready; stops it after."""
    import subprocess
    import sys

    from wedsync_perf.testing import wait_for_http

    port = free_port()
    server = subprocess.Popen(  # noqa: ASYNC220 - a real server for real clients
        [sys.executable, "-m", "wedsync_perf", "serve", "--port", str(port)],
        env={**os.environ, **env},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            await wait_for_http(client, "/health/ready")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
