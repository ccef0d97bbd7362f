"""The classification of asyncpg's errors: what answers 503, what is retried, what stays
a bug."""

from __future__ import annotations

import asyncpg
import pytest
from asyncpg.exceptions import _base as driver

from wedsync_perf.database import PoolTimeout
from wedsync_perf.database.errors import (
    DatabaseFault,
    DatabaseUnavailable,
    breaks_connection,
    fault_of,
)
from wedsync_perf.priorities import PriorityClass

UNAVAILABLE, RETRYABLE = DatabaseFault.UNAVAILABLE, DatabaseFault.RETRYABLE


@pytest.mark.parametrize(
    ("error", "fault", "breaks"),
    [
        (asyncpg.AdminShutdownError(), UNAVAILABLE, True),
        (asyncpg.CrashShutdownError(), UNAVAILABLE, True),
        (asyncpg.ConnectionDoesNotExistError(), UNAVAILABLE, True),
        (asyncpg.InterfaceError("connection is closed"), UNAVAILABLE, True),
        (asyncpg.InternalClientError("cannot switch to state 15"), UNAVAILABLE, True),
        (asyncpg.IdleInTransactionSessionTimeoutError(), UNAVAILABLE, True),
        (ConnectionResetError(), UNAVAILABLE, True),
        (asyncpg.CannotConnectNowError(), UNAVAILABLE, False),
        (asyncpg.TooManyConnectionsError(), UNAVAILABLE, False),
        (asyncpg.QueryCanceledError(), UNAVAILABLE, False),
        (ConnectionRefusedError(), UNAVAILABLE, True),
        (PoolTimeout(PriorityClass.BULK, 1.0), UNAVAILABLE, False),
        (DatabaseUnavailable("connection lost during COPY"), UNAVAILABLE, False),
        (asyncpg.SerializationError(), RETRYABLE, False),
        (asyncpg.DeadlockDetectedError(), RETRYABLE, False),
        (asyncpg.UniqueViolationError(), None, False),
        (asyncpg.UndefinedColumnError(), None, False),
        (asyncpg.exceptions.DataError(), None, False),  # the server's: bad input
        (driver.DataError("invalid input for query argument $1"), None, False),
        (ValueError("not the database's"), None, False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_each_error_has_one_meaning(
    error: BaseException, fault: DatabaseFault | None, breaks: bool
) -> None:
    assert fault_of(error) is fault
    assert breaks_connection(error) is breaks
