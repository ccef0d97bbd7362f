"""A connection taken from the pool on the first statement, not before.

A request handler declares that it may need the database; whether it does is known only
when it runs: a validation error, a 404 found in memory or a body still uploading needs
no connection, and holding one then starves the requests that do. `LazyConnection`
acquires on first use (through the acquire function it was given: a lane of a
`LanedPool`, a replica router's read or write) and gives the connection back when its
owner calls `release()` — for a FastAPI dependency, when the handler returns.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, Protocol

import asyncpg

from wedsync_perf.database.errors import (
    DatabaseFault,
    DatabaseUnavailable,
    breaks_connection,
    fault_of,
)
from wedsync_perf.database.queries import RequestQueries, TimedConnection

__all__ = ["LazyConnection", "Statements", "ends_with_connection"]


class Statements(Protocol):
    """What read code needs of a connection: an asyncpg connection, a pool's proxy, a
    `LazyConnection` or a `TimedConnection` all fit."""

    async def fetch(self, query: str, *args: Any) -> Any: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...


class LazyConnection:
    """asyncpg's statement methods, on a connection acquired when the first one runs.

    With `queries`, every statement is recorded for N+1 detection (`TimedConnection`).
    `timeout_s` is each statement's client-side bound (asyncpg's `timeout=`, unless a
    call passes its own): the backstop for a server that stops answering without
    closing the socket. With `idempotent` (a read-only request), a statement outside a
    transaction whose connection was lost, or that lost a conflict, runs once more on a
    fresh connection. A COPY ends when its connection does (see `copy_records_to_table`).
    Not safe to share between tasks, like the connection it stands for.
    """

    def __init__(
        self,
        acquire: Callable[[], AbstractAsyncContextManager[Any]],
        queries: RequestQueries | None = None,
        *,
        timeout_s: float | None = None,
        idempotent: bool = False,
    ) -> None:
        self._acquire = acquire
        self._queries = queries
        self._stack: AsyncExitStack | None = None
        self._conn: Any = None
        self._raw: Any = None
        self.timeout_s = timeout_s
        self.idempotent = idempotent
        self._in_transaction = 0
        self.retried = 0  # statements run a second time (at most one per connection)

    async def connection(self) -> Any:
        """The underlying connection, acquired now if not yet."""
        if self._conn is None:
            stack = AsyncExitStack()
            raw = await stack.enter_async_context(self._acquire())
            self._stack, self._raw = stack, raw
            self._conn = raw if self._queries is None else TimedConnection(raw, self._queries)
        return self._conn

    async def release(self, error: BaseException | None = None) -> None:
        """Give the connection back (a no-op when none was taken). `error`, the one that
        ended the request, tells the pool whether the connection may be reused."""
        stack, self._stack, self._conn, self._raw = self._stack, None, None, None
        if stack is not None:
            if error is None:
                await stack.aclose()
            else:
                await stack.__aexit__(type(error), error, error.__traceback__)

    async def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.timeout_s is not None:
            kwargs.setdefault("timeout", self.timeout_s)
        try:
            return await self._call(method, args, kwargs)
        except Exception as exc:
            if not self._may_retry(exc):
                raise
            self.retried += 1
            await self.release(exc)
            return await self._call(method, args, kwargs)

    async def _call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        conn = await self.connection()
        try:
            return await getattr(conn, method)(*args, **kwargs)
        except TimeoutError as exc:  # asyncpg has sent the server a cancel request
            raise DatabaseUnavailable(f"statement exceeded {kwargs.get('timeout')} s") from exc

    def _may_retry(self, exc: Exception) -> bool:
        """Once, outside a transaction, for a read-only request whose connection broke
        under the statement (or whose statement lost a conflict)."""
        if not self.idempotent or self._in_transaction or self.retried or self._raw is None:
            return False
        fault = fault_of(exc)
        if fault is DatabaseFault.RETRYABLE:
            return True
        return fault is DatabaseFault.UNAVAILABLE and (breaks_connection(exc) or _closed(self._raw))

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._run("fetch", query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._run("fetchrow", query, *args, **kwargs)

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._run("fetchval", query, *args, **kwargs)

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._run("execute", query, *args, **kwargs)

    async def executemany(self, command: str, args: Any, **kwargs: Any) -> Any:
        return await self._run("executemany", command, args, **kwargs)

    async def copy_records_to_table(self, table_name: str, **kwargs: Any) -> Any:
        """asyncpg's COPY, ended with `DatabaseUnavailable` as soon as its connection
        closes, and at `timeout_s` at the latest. asyncpg's own COPY waits for the
        socket to drain without a deadline: a backend killed while the write buffer is
        full would otherwise leave it waiting forever."""
        conn = await self.connection()
        raw = self._raw
        if self.timeout_s is not None:
            kwargs.setdefault("timeout", self.timeout_s)
        async with ends_with_connection(raw, kwargs.get("timeout")):
            return await conn.copy_records_to_table(table_name, **kwargs)

    @asynccontextmanager
    async def transaction(self, **kwargs: Any) -> AsyncIterator[Any]:
        """`async with conn.transaction():` as on asyncpg, acquiring first."""
        async with (await self.connection()).transaction(**kwargs) as transaction:
            self._in_transaction += 1
            try:
                yield transaction
            finally:
                self._in_transaction -= 1


def _closed(connection: Any) -> bool:
    try:
        return bool(connection.is_closed())
    except asyncpg.InterfaceError:  # a pool's proxy, detached once its connection closed
        return True


@asynccontextmanager
async def ends_with_connection(connection: Any, timeout_s: float | None) -> AsyncIterator[None]:
    """Bound the block by `timeout_s` and by `connection`'s life: when the connection
    closes (asyncpg's termination listener), the block is cancelled and
    `DatabaseUnavailable` raised from the error that ended it."""
    lost = False
    try:
        async with asyncio.timeout(timeout_s) as bound:

            def closed(_: object) -> None:
                nonlocal lost
                lost = True
                bound.reschedule(asyncio.get_running_loop().time())

            connection.add_termination_listener(closed)
            try:
                yield
            finally:
                # A pool's proxy refuses every call once its connection closed; asyncpg
                # has dropped the listener with it then.
                with contextlib.suppress(asyncpg.InterfaceError):
                    connection.remove_termination_listener(closed)
    except TimeoutError as exc:
        problem = "connection lost mid-statement" if lost else f"no answer within {timeout_s} s"
        raise DatabaseUnavailable(problem) from exc
    except Exception as exc:
        if lost:
            raise DatabaseUnavailable("connection lost mid-statement") from exc
        raise
