"""What an asyncpg error means for the request that met it: one table, one place.

    UNAVAILABLE  the server or the connection is not serving right now (restart, admin
                 shutdown, killed backend, lost socket, statement bound reached, no
                 connection to be had): answer 503 with `Retry-After`; a statement known
                 to be idempotent may be run once more on a fresh connection.
    RETRYABLE    the transaction lost a conflict (serialization failure, deadlock) and
                 was rolled back whole: run it again, once; if that fails too, 503.
    None         anything else is a bug or a bad request, and must stay visible.

`breaks_connection()` says whether the connection the error came from may be reused;
the pool terminates it otherwise, so a broken connection is never handed out again.
"""

from __future__ import annotations

import enum

import asyncpg
from asyncpg.exceptions import _base as _driver

from wedsync_perf.errors import WedsyncPerfError

__all__ = [
    "RETRY_AFTER_S",
    "DatabaseFault",
    "DatabaseUnavailable",
    "breaks_connection",
    "fault_of",
]

RETRY_AFTER_S = 1  # what a 503 for a database fault tells the client to wait


class DatabaseFault(enum.Enum):
    UNAVAILABLE = "unavailable"
    RETRYABLE = "retryable"


class DatabaseUnavailable(WedsyncPerfError):
    """The database could not serve a statement now (its connection died, or the
    statement reached its bound); the driver's error, if any, is the `__cause__`."""

    http_status = 503


# Client-side faults that are the caller's (bad argument, misconfiguration): never 503.
_CLIENT_BUGS: tuple[type[BaseException], ...] = (
    _driver.DataError,  # a Python value of the wrong type for its column
    _driver.ClientConfigurationError,
    _driver.UnsupportedClientFeatureError,
)
# The connection is gone or unusable: the socket, the backend or the protocol state.
_LOST: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # 08*: does not exist, failure, resolution unknown
    asyncpg.AdminShutdownError,  # 57P01: pg_terminate_backend, fast/smart shutdown
    asyncpg.CrashShutdownError,  # 57P02: another backend crashed, or immediate shutdown
    asyncpg.IdleInTransactionSessionTimeoutError,  # 25P03: the session was ended
    asyncpg.IdleSessionTimeoutError,
    asyncpg.InterfaceError,  # "connection is closed", "released back to the pool"
    asyncpg.InternalClientError,  # "cannot switch to state …" after a lost socket
    ConnectionError,
)
# The server refuses or cut the statement short; the connection itself is sound.
_REFUSED: tuple[type[BaseException], ...] = (
    asyncpg.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    asyncpg.TooManyConnectionsError,
    asyncpg.QueryCanceledError,  # 57014: statement_timeout or a cancel request
    asyncpg.ReadOnlySQLTransactionError,  # a standby answering as primary (failover)
    asyncpg.DatabaseDroppedError,
    OSError,  # connection refused, host unreachable: at connect time
)
_CONFLICT: tuple[type[BaseException], ...] = (
    asyncpg.SerializationError,  # 40001
    asyncpg.DeadlockDetectedError,  # 40P01
    _driver.OutdatedSchemaCacheError,  # a concurrent migration: re-prepare
)


def fault_of(exc: BaseException) -> DatabaseFault | None:
    """The class of `exc` (see the module docstring); None for a bug or a bad request."""
    if isinstance(exc, _CLIENT_BUGS):
        return None
    if isinstance(exc, _CONFLICT):
        return DatabaseFault.RETRYABLE
    if isinstance(exc, _LOST + _REFUSED):
        return DatabaseFault.UNAVAILABLE
    if isinstance(exc, WedsyncPerfError) and exc.http_status == 503:
        return DatabaseFault.UNAVAILABLE  # PoolTimeout, DatabaseUnavailable
    return None


def breaks_connection(exc: BaseException) -> bool:
    """Whether the connection that raised `exc` must be terminated, not reused."""
    return isinstance(exc, _LOST) and not isinstance(exc, _CLIENT_BUGS)
