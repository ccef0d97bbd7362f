"""One exception tree for the library.

Every error the library raises on purpose derives from `WedsyncPerfError`, so a caller
can catch the library's failures without catching programming errors. Subclasses carry
an `http_status` hint for code that turns them into responses.
"""

from __future__ import annotations


class WedsyncPerfError(Exception):
    """Root of every error wedsync-perf raises deliberately."""

    http_status: int = 500


class ConfigError(WedsyncPerfError):
    """A setting is missing or invalid; the message names the environment variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class EmbeddedServerError(WedsyncPerfError):
    """An embedded PostgreSQL or Redis could not be started."""

    http_status = 503


class MigrationError(WedsyncPerfError):
    """A schema migration is malformed or failed to apply."""
