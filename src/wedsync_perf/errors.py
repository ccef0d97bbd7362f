"""One exception tree for the library.

Every error the library raises on purpose derives from `WedsyncPerfError`, so a caller
can catch the library's failures without catching programming errors. Subclasses carry
an `http_status` hint for code that turns them into responses.

    WedsyncPerfError
    ├── ConfigError          a setting (named by its environment variable)
    ├── InvalidValue         an argument outside what is accepted   (also a ValueError)
    ├── CorruptData          stored bytes that do not decode        (also a ValueError)
    │   └── SealError        a sealed value that does not open
    ├── BackendUnavailable   a storage server did not answer (the driver's error is
    │                        its __cause__)
    ├── EmbeddedServerError
    └── MigrationError

`InvalidValue` and `CorruptData` keep `ValueError` as a second base: code written
against the builtin keeps working.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "ConfigError",
    "CorruptData",
    "EmbeddedServerError",
    "InvalidValue",
    "MigrationError",
    "SealError",
    "WedsyncPerfError",
]


class WedsyncPerfError(Exception):
    """Root of every error wedsync-perf raises deliberately."""

    http_status: int = 500


class ConfigError(WedsyncPerfError):
    """A setting is missing or invalid; the message names the environment variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class InvalidValue(WedsyncPerfError, ValueError):
    """An argument the library does not accept. `field` names it (several, joined by
    '/', when only their combination is wrong), `value` is what was given and
    `accepted` says what would do."""

    def __init__(self, field: str, value: object, accepted: str) -> None:
        super().__init__(field, value, accepted)  # args as given: the error pickles
        self.field = field
        self.value = value
        self.accepted = accepted

    def __str__(self) -> str:
        return f"{self.field}: got {self.value!r}, expected {self.accepted}"


class CorruptData(WedsyncPerfError, ValueError):
    """Bytes read back (a cache entry, a serialized sketch or series) are not what the
    library wrote: the reader treats the item as absent."""


class SealError(CorruptData):
    """A sealed value could not be opened: corrupt, forged, or sealed with a retired key."""


class BackendUnavailable(WedsyncPerfError):
    """A storage server (Redis) failed or could not be reached. Raised by the adapter
    that talks to the driver, with the driver's exception as `__cause__`, so callers
    above it never see driver types."""

    http_status = 503


class EmbeddedServerError(WedsyncPerfError):
    """An embedded PostgreSQL or Redis could not be started."""

    http_status = 503


class MigrationError(WedsyncPerfError):
    """A schema migration is malformed or failed to apply."""
