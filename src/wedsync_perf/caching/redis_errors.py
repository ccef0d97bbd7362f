"""Where redis-py's errors become the library's: the adapters that call the driver
(`RedisBackend`, `InvalidationBus`) run each call inside `unavailable()`, so the code
above them handles one exception type and never imports the driver's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.exceptions

from wedsync_perf.errors import BackendUnavailable

__all__ = ["DRIVER_ERRORS", "unavailable"]

# redis-py's own tree, plus OSError (and so TimeoutError and ConnectionError), which it
# lets through from sockets and connection set-up.
DRIVER_ERRORS: tuple[type[Exception], ...] = (redis.exceptions.RedisError, OSError)


@contextlib.contextmanager
def unavailable(operation: str) -> Iterator[None]:
    """Raises `BackendUnavailable` (the driver's error as its cause) for any driver
    error inside the block. The message names the operation and the error's type only:
    driver messages can carry addresses."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise BackendUnavailable(f"redis {operation} failed ({type(exc).__name__})") from exc
