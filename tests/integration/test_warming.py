"""Warming a wedding day fills exactly what the routes would cache."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import asyncpg
import pytest

from tests.conftest import api_settings, key_for, running
from wedsync_api.app import create_app, services_of
from wedsync_perf.caching import Cache, MemoryBackend

pytestmark = pytest.mark.integration


async def _busiest_day(db: asyncpg.Connection, tenant: int = 1) -> date:
    day = await db.fetchval(
        "SELECT wedding_date FROM weddings WHERE tenant_id = $1 AND status <> 'cancelled'"
        " GROUP BY wedding_date ORDER BY count(*) DESC, wedding_date LIMIT 1",
        tenant,
    )
    assert day is not None
    return day


async def test_warmed_day_is_served_without_loading(
    seeded_dsn: str, db: asyncpg.Connection
) -> None:
    day = await _busiest_day(db)
    wedding = await db.fetchval(
        "SELECT min(id) FROM weddings WHERE tenant_id = 1 AND wedding_date = $1"
        " AND status <> 'cancelled'",
        day,
    )
    app = create_app(api_settings(), dsn=seeded_dsn)
    async with running(app) as client:
        cache = services_of(app).cache
        done: list[int] = []
        report = await services_of(app).warm(day, progress=lambda n, _total: done.append(n))
        assert report.weddings >= 1
        assert report.failed == 0
        assert report.loaded == report.entries == len(done)
        assert set(report.by_class) == {
            "wedding_timeline",
            "wedding_vendors",
            "wedding",
            "supplier_profile",
        }
        again = await services_of(app).warm(day)
        assert again.loaded == 0  # already cached: nothing reloaded
        before = cache.stats.of("wedding_timeline").loader_calls
        response = await client.get(f"/weddings/{wedding}/timeline", headers=key_for(1))
        assert response.status_code == 200
        assert cache.stats.of("wedding_timeline").loader_calls == before


async def test_warming_reports_only_what_it_stored_and_why_it_skipped_the_rest(
    seeded_dsn: str, db: asyncpg.Connection
) -> None:
    day = await _busiest_day(db)
    no_keyring = Cache(MemoryBackend(), secret=b"warming-test-secret-0123")
    app = create_app(api_settings(), dsn=seeded_dsn, cache=no_keyring)
    async with running(app):
        report = await services_of(app).warm(day)
    sealed = ("supplier_profile", "wedding", "wedding_vendors")
    assert set(report.by_class) == {"wedding_timeline"}  # the one class stored unsealed
    assert report.loaded == report.by_class["wedding_timeline"] == report.weddings
    assert set(report.skipped) == {f"{c}: no keyring" for c in sealed}
    assert report.loaded + sum(report.skipped.values()) == report.entries
    for data_class in sealed:  # never stored, so never loaded
        assert no_keyring.stats.of(data_class).loader_calls == 0, data_class


def test_cli_warm_needs_a_shared_cache(seeded_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": seeded_dsn}
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "wedsync_perf", "cache", "warm", "--date", "2026-06-13"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "REDIS_URL" in result.stderr


def test_cli_warm_reports_what_it_did(seeded_dsn: str, redis_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": seeded_dsn, "REDIS_URL": redis_url, "COLUMNS": "200"}
    bad = subprocess.run(
        [sys.executable, "-m", "wedsync_perf", "cache", "warm", "--date", "13/06/2026"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "--date" in bad.stderr
    result = subprocess.run(
        [sys.executable, "-m", "wedsync_perf", "cache", "warm", "--date", "2025-07-12"],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warmed" in result.stdout
    assert "stored" in result.stdout
    assert "already cached" in result.stdout
