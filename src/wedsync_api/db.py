"""Connecting the reference API to PostgreSQL: URL resolution, pool, migrations."""

from __future__ import annotations

import asyncio

import asyncpg

from wedsync_api.settings import ApiSettings
from wedsync_perf.database import apply_migrations, load_migrations
from wedsync_perf.embedded import embedded_postgres_url
from wedsync_perf.priorities import PriorityClass
from wedsync_perf.settings import PerfSettings, load_settings

__all__ = ["EMBEDDED_DATABASE", "create_pool", "database_url", "migrate", "migrated_url",
           "statement_bounds"]  # fmt: skip

EMBEDDED_DATABASE = "wedsync"


def database_url(settings: ApiSettings, perf: PerfSettings | None = None) -> str:
    """`DATABASE_URL` when set, else the embedded server's URL (started if needed)."""
    if settings.database_url:
        return settings.database_url
    perf = perf or load_settings(PerfSettings)
    return embedded_postgres_url(perf.data_dir / "postgres", database=EMBEDDED_DATABASE)


async def create_pool(dsn: str, settings: ApiSettings) -> asyncpg.Pool:
    """A pool that connects lazily (min size 0 by default), so the API starts and
    reports "not ready" while the database is down instead of crashing. Every session
    starts with the server-side caps: `statement_timeout` (the bulk lane raises its
    own, see `Services`) and `idle_in_transaction_session_timeout`."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        command_timeout=settings.statement_timeout_ms / 1000 + 1,
        server_settings={
            "statement_timeout": str(settings.statement_timeout_ms),
            "idle_in_transaction_session_timeout": str(settings.idle_in_transaction_timeout_ms),
            "application_name": "wedsync_api",
        },
    )
    assert pool is not None  # create_pool only returns None when awaited twice
    return pool


def statement_bounds(settings: ApiSettings) -> dict[PriorityClass, float]:
    """Each lane's client-side statement bound (s). Beyond the server's own cap by 1 s
    for standard and bulk, so the server normally cancels first; a server that stops
    answering without closing its socket is cut off here."""
    return {
        PriorityClass.CRITICAL: settings.critical_statement_timeout_ms / 1000,
        PriorityClass.STANDARD: settings.statement_timeout_ms / 1000 + 1,
        PriorityClass.BULK: settings.bulk_statement_timeout_ms / 1000 + 1,
    }


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
