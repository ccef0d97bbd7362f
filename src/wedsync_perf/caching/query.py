"""Query cache: results of read queries cached by statement and parameters, tagged by
the tables they read; writes made through the same wrapper invalidate those tables.

    queries = QueryCache(cache).bind(conn, tenant=tenant_id)
    rows = await queries.fetch("SELECT … FROM suppliers WHERE tenant_id = $1", tenant_id)
    async with queries.transaction():
        await queries.execute("UPDATE suppliers SET … WHERE …", …)   # invalidated on commit

Keys are the statement's normalised text (whitespace and case of keywords do not
matter) plus its parameters, HMAC'd like every cache key. Table tags are scoped to the
tenant, which assumes the queries filter by tenant (every query of the reference API
does); bind with `tenant=None` for shared tables. Rows come back as dicts with their
Python types intact (dates, datetimes, UUIDs, decimals, bytes survive the round trip).
Invalidation after a write happens once the write is committed: inside `transaction()`
at commit, otherwise right after the statement.

`QueryCache(None)` caches nothing and gives the same interface (rows as dicts): an app
built without the cache runs the same handlers.
"""

from __future__ import annotations

import base64
import functools
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence, Set
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson

from wedsync_perf.caching.cache import Cache

__all__ = ["CachedQueries", "QueryCache", "normalise", "tables_read", "tables_written"]

_SPACE = re.compile(r"\s+")
_READ = re.compile(r"\b(?:from|join)\s+(?:only\s+)?([a-z_][a-z0-9_.]*)", re.IGNORECASE)
_WRITE = re.compile(
    r"\b(?:insert\s+into|update|delete\s+from|truncate(?:\s+table)?|merge\s+into|copy)\s+"
    r"(?:only\s+)?([a-z_][a-z0-9_.]*)",
    re.IGNORECASE,
)
_STRING = re.compile(r"'(?:[^']|'')*'")


@functools.lru_cache(maxsize=1024)
def normalise(sql: str) -> str:
    """One spacing and lower case — outside string literals, which stay as written
    (two statements differing only inside a literal must not share a key)."""
    parts, at = [], 0
    for match in _STRING.finditer(sql):
        parts.append(_SPACE.sub(" ", sql[at : match.start()].lower()))
        parts.append(match.group(0))
        at = match.end()
    parts.append(_SPACE.sub(" ", sql[at:].lower()))
    return "".join(parts).strip()


@functools.lru_cache(maxsize=1024)
def tables_read(sql: str) -> frozenset[str]:
    """Tables a statement reads (memoised: an app's statements are a small set)."""
    return frozenset(t.split(".")[-1].lower() for t in _READ.findall(_STRING.sub("''", sql)))


@functools.lru_cache(maxsize=1024)
def tables_written(sql: str) -> frozenset[str]:
    return frozenset(t.split(".")[-1].lower() for t in _WRITE.findall(_STRING.sub("''", sql)))


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, time):
        return {"$t": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$td": value.total_seconds()}
    if isinstance(value, uuid.UUID):
        return {"$u": str(value)}
    if isinstance(value, Decimal):
        return {"$n": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"$o": {k: _encode(v) for k, v in value.items()}}
    return value


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "$dt": datetime.fromisoformat,
    "$d": date.fromisoformat,
    "$t": time.fromisoformat,
    "$td": _seconds,
    "$u": uuid.UUID,
    "$n": Decimal,
    "$b": base64.b64decode,
}


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "$o":
            return {k: _decode(v) for k, v in inner.items()}
        decoder = _DECODERS.get(tag)
        if decoder is not None:
            return decoder(inner)
    return value


class QueryCache:
    def __init__(
        self, cache: Cache | None, *, data_class: str = "default", ttl_s: float | None = None
    ) -> None:
        """Raises `InvalidValue` when `cache`'s policy does not name `data_class`."""
        if cache is not None:
            cache.policy.of(data_class)  # fail when configured, not on the first query
        self.cache = cache
        self.data_class = data_class
        self.ttl_s = ttl_s

    def bind(self, conn: Any, *, tenant: str | int | None) -> CachedQueries:
        return CachedQueries(self, conn, tenant)


class CachedQueries:
    """An asyncpg connection's fetch/execute, through the cache."""

    def __init__(self, owner: QueryCache, conn: Any, tenant: str | int | None) -> None:
        self._owner = owner
        self.conn = conn
        self.tenant = tenant
        self._pending: set[str] | None = None  # tables written in the open transaction

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        cache = self._owner.cache
        written = tables_written(sql)
        if cache is None or written:  # a write that returns rows is never cached
            rows = [dict(row) for row in await self.conn.fetch(sql, *args)]
            await self._written(written)
            return rows
        text = normalise(sql)
        key = "q:" + orjson.dumps([text, _encode(list(args))]).decode()
        tags = [f"table:{t}" for t in sorted(tables_read(sql))]

        async def load() -> Any:
            rows = await self.conn.fetch(sql, *args)
            return [{k: _encode(v) for k, v in row.items()} for row in rows]

        if self._pending is not None:  # inside our own write transaction: no caching
            return [_decode_row(r) for r in await load()]
        cached = await cache.get_or_set(
            key, load, tenant=self.tenant, data_class=self._owner.data_class, tags=tags,
            ttl_s=self._owner.ttl_s,
        )  # fmt: skip
        return [_decode_row(r) for r in cached]

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else next(iter(row.values()), None)

    async def execute(self, sql: str, *args: Any) -> str:
        status: str = await self.conn.execute(sql, *args)
        await self._written(tables_written(sql))
        return status

    async def executemany(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, args)
        await self._written(tables_written(sql))

    async def copy_records_to_table(self, table_name: str, **kwargs: Any) -> Any:
        result = await self.conn.copy_records_to_table(table_name, **kwargs)
        await self._written({table_name.split(".")[-1].lower()})
        return result

    async def _written(self, tables: Set[str]) -> None:
        if not tables or self._owner.cache is None:
            return
        if self._pending is not None:
            self._pending |= tables
            return
        await self._owner.cache.invalidate(*(f"table:{t}" for t in tables), tenant=self.tenant)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[CachedQueries]:
        """Writes inside invalidate their tables once the transaction has committed
        (an invalidation before commit would let a reader re-cache the old rows)."""
        if self._pending is not None:
            raise RuntimeError("CachedQueries.transaction() does not nest")
        self._pending = set()
        try:
            async with self.conn.transaction():
                yield self
            tables, self._pending = self._pending, None
            if tables and self._owner.cache is not None:
                await self._owner.cache.invalidate(
                    *(f"table:{t}" for t in tables), tenant=self.tenant
                )
        finally:
            self._pending = None


def _decode_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _decode(v) for k, v in row.items()}
