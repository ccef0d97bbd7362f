"""Connecting the reference API to PostgreSQL: URL resolution, pool, migrations."""

from __future__ import annotations

import asyncio

import asyncpg

from wedsync_api.settings import ApiSettings
from wedsync_perf.database import apply_migrations, load_migrations
from wedsync_perf.embedded import embedded_postgres_url
from wedsync_perf.settings import PerfSettings, load_settings

__all__ = ["EMBEDDED_DATABASE", "create_pool", "database_url", "migrate", "migrated_url"]

EMBEDDED_DATABASE = "wedsync"


def database_url(settings: ApiSettings, perf: PerfSettings | None = None) -> str:
    """`DATABASE_URL` when set, else the embedded server's URL (started if needed)."""
    if settings.database_url:
        return settings.database_url
    perf = perf or load_settings(PerfSettings)
    return embedded_postgres_url(perf.data_dir / "postgres", database=EMBEDDED_DATABASE)


async def create_pool(dsn: str, settings: ApiSettings) -> asyncpg.Pool:
    """A pool that connects lazily (min size 0 by default), so the API starts and
    reports "not ready" while the database is down instead of crashing."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        command_timeout=settings.statement_timeout_ms / 1000 + 1,
        server_settings={
            "statement_timeout": str(settings.statement_timeout_ms),
            "application_name": "wedsync_api",
        },
    )
    assert pool is not None  # create_pool only returns None when awaited twice
    return pool


async def migrate(dsn: str) -> list[int]:
    """Bring the schema up to date; return the versions applied now."""
    conn = await asyncpg.connect(dsn)
    try:
        return await apply_migrations(conn, load_migrations("wedsync_api"))
    finally:
        await conn.close()


def migrated_url(settings: ApiSettings) -> str:
    """`database_url`, its schema brought up to date first: where every command that
    reads or serves the data starts. Blocking: call it before (or beside) an event loop."""
    dsn = database_url(settings)
    asyncio.run(migrate(dsn))
    return dsn
