"""The query cache on a real PostgreSQL: hits, types intact, writes invalidating the
tables they touch — after commit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal

import asyncpg
import pytest

from wedsync_perf.caching import Cache, MemoryBackend
from wedsync_perf.caching.query import (
    CachedQueries,
    QueryCache,
    normalise,
    tables_read,
    tables_written,
)
from wedsync_perf.testing import temporary_database

pytestmark = pytest.mark.integration


class Counting:
    """An asyncpg connection that counts the statements reaching the server."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.fetches = 0

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        self.fetches += 1
        return await self.conn.fetch(sql, *args)

    async def execute(self, sql: str, *args: object) -> str:
        return await self.conn.execute(sql, *args)

    async def executemany(self, sql: str, args: object) -> None:
        await self.conn.executemany(sql, args)

    def transaction(self) -> object:
        return self.conn.transaction()


@pytest.fixture
async def queries(server_url: str) -> AsyncIterator[tuple[CachedQueries, Counting]]:
    async with temporary_database(server_url) as dsn:
        conn = await asyncpg.connect(dsn)
        await conn.execute(
            "CREATE TABLE items (id uuid PRIMARY KEY, day date, at timestamptz,"
            " price numeric(8,2), name text, tenant_id int)"
        )
        counting = Counting(conn)
        cache = Cache(MemoryBackend(), secret=b"0123456789abcdef")
        yield QueryCache(cache).bind(counting, tenant=1), counting
        await conn.close()


async def test_reads_are_cached_with_types_intact(queries: tuple[CachedQueries, Counting]) -> None:
    q, counting = queries
    ident = uuid.uuid4()
    await q.execute(
        "INSERT INTO items VALUES ($1, $2, $3, $4, $5, 1)",
        ident, date(2027, 6, 12), datetime.fromisoformat("2027-06-12T14:00:00+00:00"),
        Decimal("1250.50"), "Marquee",
    )  # fmt: skip
    sql = "SELECT * FROM items WHERE tenant_id = $1"
    first = await q.fetch(sql, 1)
    again = await q.fetch("select *   from items\n where tenant_id = $1", 1)
    assert first == again
    assert counting.fetches == 1
    row = first[0]
    assert row["id"] == ident
    assert row["day"] == date(2027, 6, 12)
    assert row["price"] == Decimal("1250.50")
    assert row["at"].isoformat() == "2027-06-12T14:00:00+00:00"
    assert await q.fetchval("SELECT count(*) FROM items WHERE tenant_id = $1", 2) == 0


async def test_writes_invalidate_the_tables_they_touch(
    queries: tuple[CachedQueries, Counting],
) -> None:
    q, _ = queries
    sql = "SELECT name FROM items WHERE tenant_id = $1 ORDER BY name"
    assert await q.fetch(sql, 1) == []
    await q.execute("INSERT INTO items (id, name, tenant_id) VALUES ($1, 'Arch', 1)", uuid.uuid4())
    assert await q.fetch(sql, 1) == [{"name": "Arch"}]
    async with q.transaction():
        await q.execute("UPDATE items SET name = 'Bower' WHERE tenant_id = $1", 1)
    assert await q.fetch(sql, 1) == [{"name": "Bower"}]


def test_statement_analysis() -> None:
    assert (
        normalise("SELECT  *\nFROM Items WHERE name = 'A  B'")
        == "select * from items where name = 'A  B'"
    )
    assert tables_read("SELECT * FROM a JOIN b ON true LEFT JOIN public.c ON true") == {
        "a",
        "b",
        "c",
    }
    assert tables_written("INSERT INTO x VALUES (1)") == {"x"}
    assert tables_written("update y set a = 'from z'") == {"y"}
    assert tables_written("DELETE FROM w WHERE true") == {"w"}
