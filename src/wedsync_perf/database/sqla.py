"""Query figures and N+1 detection for SQLAlchemy 2 (AsyncSession or plain Session).

`instrument_engine(engine)` listens to the engine's cursor events (the async engine's
`sync_engine` underneath), so every statement an ORM load, a relationship load or a
Core call sends is timed into the `RequestQueries` of the request in progress — found
through a context variable, which SQLAlchemy's asyncio layer carries into the greenlet
that runs the driver. `collecting(tracker, route)` marks a request:

    instrument_engine(engine)                      # once, at start-up
    with collecting(tracker, "/weddings/{id}/vendors"):
        ...                                       # the request's work

A `selectinload` is one `IN (…)` statement per relationship, so it is never flagged;
`executemany` is one statement too. Parameters are never read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from wedsync_perf.database.queries import QueryTracker, RequestQueries

__all__ = ["collecting", "instrument_engine"]

_CURRENT: ContextVar[RequestQueries | None] = ContextVar("wedsync_perf_queries", default=None)
_STARTED = "wedsync_perf_started"


@contextmanager
def collecting(tracker: QueryTracker, route: str) -> Iterator[RequestQueries]:
    """Collect the statements run inside the block; fold them into `tracker` at the end."""
    queries = RequestQueries()
    token = _CURRENT.set(queries)
    try:
        yield queries
    finally:
        _CURRENT.reset(token)
        tracker.finish(route, queries)


def instrument_engine(engine: Any) -> None:
    """Time every statement of `engine` (an `AsyncEngine` or `Engine`); idempotent."""
    from sqlalchemy import event

    sync_engine = getattr(engine, "sync_engine", engine)
    if not event.contains(sync_engine, "before_cursor_execute", _before):
        event.listen(sync_engine, "before_cursor_execute", _before)
        event.listen(sync_engine, "after_cursor_execute", _after)
        event.listen(sync_engine, "handle_error", _failed)


def _before(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> None:
    if _CURRENT.get() is not None:
        conn.info.setdefault(_STARTED, []).append(time.perf_counter())


def _after(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> None:
    queries = _CURRENT.get()
    started = conn.info.get(_STARTED)
    if queries is not None and started:
        queries.add(statement, time.perf_counter() - started.pop())


def _failed(context: Any) -> None:
    # A failed statement never reaches after_cursor_execute: drop its start time.
    started = context.connection.info.get(_STARTED) if context.connection is not None else None
    if started:
        started.pop()
