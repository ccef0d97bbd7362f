"""The seed is deterministic, realistic in shape, and never runs twice by accident."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import TEST_SCALE
from wedsync_api.db import migrate
from wedsync_api.seed import AlreadySeededError, SeedPlan, dataset_checksums, seed
from wedsync_perf.testing import temporary_database

pytestmark = pytest.mark.integration


async def _seeded_copy(server_url: str, plan: SeedPlan) -> tuple[dict[str, int], dict[str, str]]:
    async with temporary_database(server_url) as dsn:
        await migrate(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            counts = await seed(conn, plan)
            return counts, await dataset_checksums(conn)
        finally:
            await conn.close()


async def test_same_seed_same_data_other_seed_other_data(server_url: str) -> None:
    plan = SeedPlan(scale=0.01, seed=3)
    counts_a, sums_a = await _seeded_copy(server_url, plan)
    counts_b, sums_b = await _seeded_copy(server_url, plan)
    assert counts_a == counts_b
    assert sums_a == sums_b
    _, sums_c = await _seeded_copy(server_url, SeedPlan(scale=0.01, seed=4))
    assert sums_c["weddings"] != sums_a["weddings"]


async def test_second_seed_is_refused_and_force_reseeds(seeded_dsn: str, server_url: str) -> None:
    conn = await asyncpg.connect(seeded_dsn)
    try:
        with pytest.raises(AlreadySeededError, match="--force"):
            await seed(conn, SeedPlan(scale=TEST_SCALE, seed=99))
    finally:
        await conn.close()
    async with temporary_database(server_url) as dsn:
        await migrate(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            first = await seed(conn, SeedPlan(scale=0.01, seed=5))
            again = await seed(conn, SeedPlan(scale=0.01, seed=5), force=True)
            assert again == first
            assert await conn.fetchval("SELECT count(*) FROM seed_runs") == 1
        finally:
            await conn.close()


async def test_wedding_shape(db: asyncpg.Connection) -> None:
    season, winter, saturdays, total = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE extract(month FROM wedding_date) BETWEEN 5 AND 10),"
        " count(*) FILTER (WHERE extract(month FROM wedding_date) IN (12, 1, 2)),"
        " count(*) FILTER (WHERE extract(isodow FROM wedding_date) = 6), count(*) FROM weddings"
    )
    # Per month: six season months against three winter months, about 10x.
    assert (season / 6) / (winter / 3) > 6
    assert saturdays / total > 0.6
    lengths = await db.fetch("SELECT count(*) AS n FROM timeline_items GROUP BY wedding_id")
    assert {r["n"] for r in lengths} <= set(range(10, 31))
    assert min(r["n"] for r in lengths) == 10
    assert max(r["n"] for r in lengths) == 30
    years = await db.fetchval(
        "SELECT count(DISTINCT extract(year FROM wedding_date)) FROM weddings"
    )
    assert years == 3
