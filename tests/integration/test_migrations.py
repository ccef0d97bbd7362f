from __future__ import annotations

import asyncpg
import pytest

from wedsync_perf.database import Migration, apply_migrations, load_migrations
from wedsync_perf.errors import MigrationError
from wedsync_perf.testing import temporary_database

pytestmark = pytest.mark.integration


async def test_migrations_apply_once_and_detect_edits(server_url: str) -> None:
    migrations = load_migrations("wedsync_api")
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    async with temporary_database(server_url) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            assert await apply_migrations(conn, migrations) == [m.version for m in migrations]
            assert await apply_migrations(conn, migrations) == []
            edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in migrations]
            with pytest.raises(MigrationError, match="changed after it was applied"):
                await apply_migrations(conn, edited)
        finally:
            await conn.close()


async def test_failed_migration_leaves_nothing(server_url: str) -> None:
    good = Migration(1, "make_table", "CREATE TABLE kept (id int)")
    bad = Migration(2, "broken", "CREATE TABLE nope (id int); SELECT * FROM missing_table")
    async with temporary_database(server_url) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            with pytest.raises(MigrationError, match="0002_broken"):
                await apply_migrations(conn, [good, bad])
            assert await conn.fetchval("SELECT to_regclass('kept')") is None
            assert await conn.fetchval("SELECT to_regclass('schema_migrations')") is None
        finally:
            await conn.close()
