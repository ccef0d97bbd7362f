"""A connection taken from the pool on the first statement, not before.

A request handler declares that it may need the database; whether it does is known only
when it runs: a validation error, a 404 found in memory or a body still uploading needs
no connection, and holding one then starves the requests that do. `LazyConnection`
acquires on first use (through the acquire function it was given: a lane of a
`LanedPool`, a replica router's read or write) and gives the connection back when its
owner calls `release()` — for a FastAPI dependency, when the handler returns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, Protocol

from wedsync_perf.database.queries import RequestQueries, TimedConnection

__all__ = ["LazyConnection", "Statements"]


class Statements(Protocol):
    """What read code needs of a connection: an asyncpg connection, a pool's proxy, a
    `LazyConnection` or a `TimedConnection` all fit."""

    async def fetch(self, query: str, *args: Any) -> Any: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...


class LazyConnection:
    """asyncpg's statement methods, on a connection acquired when the first one runs.

    With `queries`, every statement is recorded for N+1 detection (`TimedConnection`).
    Not safe to share between tasks, like the connection it stands for.
    """

    def __init__(
        self,
        acquire: Callable[[], AbstractAsyncContextManager[Any]],
        queries: RequestQueries | None = None,
    ) -> None:
        self._acquire = acquire
        self._queries = queries
        self._stack: AsyncExitStack | None = None
        self._conn: Any = None

    async def connection(self) -> Any:
        """The underlying connection, acquired now if not yet."""
        if self._conn is None:
            stack = AsyncExitStack()
            raw = await stack.enter_async_context(self._acquire())
            self._stack = stack
            self._conn = raw if self._queries is None else TimedConnection(raw, self._queries)
        return self._conn

    async def release(self) -> None:
        """Give the connection back (a no-op when none was taken)."""
        stack, self._stack, self._conn = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).fetch(query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).fetchrow(query, *args, **kwargs)

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).fetchval(query, *args, **kwargs)

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).execute(query, *args, **kwargs)

    async def executemany(self, command: str, args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).executemany(command, args, **kwargs)

    async def copy_records_to_table(self, table_name: str, **kwargs: Any) -> Any:
        return await (await self.connection()).copy_records_to_table(table_name, **kwargs)

    @asynccontextmanager
    async def transaction(self, **kwargs: Any) -> AsyncIterator[Any]:
        """`async with conn.transaction():` as on asyncpg, acquiring first."""
        async with (await self.connection()).transaction(**kwargs) as transaction:
            yield transaction
