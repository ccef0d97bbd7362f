"""A transaction run again, once, when it lost a conflict.

A serialization failure or a deadlock rolls the whole transaction back, so running the
same block again is safe — unlike a lost connection mid-commit, whose outcome is
unknown and which is never retried here (it answers 503; the client decides).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from wedsync_perf.database.errors import DatabaseFault, fault_of

__all__ = ["run_in_transaction"]

T = TypeVar("T")


async def run_in_transaction(
    conn: Any, block: Callable[[], Awaitable[T]], *, retries: int = 1, **options: Any
) -> T:
    """`await block()` inside `conn.transaction(**options)` (an asyncpg connection, a
    pool's proxy or a `LazyConnection`); up to `retries` more times while it fails with
    a RETRYABLE fault (`fault_of`). Any other error, or the last conflict, propagates."""
    for attempt in range(retries + 1):
        try:
            async with conn.transaction(**options):
                return await block()
        except Exception as exc:
            if attempt == retries or fault_of(exc) is not DatabaseFault.RETRYABLE:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")
