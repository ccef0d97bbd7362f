"""Serving an app with uvicorn, with the connection bounds uvicorn leaves open.

uvicorn closes a keep-alive connection idle between requests (`timeout_keep_alive`),
but not one that never sends a request, or sends half a header and stops: each holds
a descriptor for as long as the client likes. `HeaderTimeout` closes a connection whose
request head is not complete within `header_timeout_s` of its first byte or of the
connection opening (nginx's `client_header_timeout`). Bodies are the app's to bound: a
request's overall deadline (`pipeline.Deadlines`) covers reading them.

On SIGTERM uvicorn stops accepting, lets in-flight requests finish for
`graceful_shutdown_s`, then cancels them, and runs the app's shutdown.

Worker processes are spawned and load the protocol by name
(`wedsync_perf.serving:HeaderTimeoutProtocol`), so the header timeout travels in the
environment (`WEDSYNC_PERF_HEADER_TIMEOUT_S`), not in a closure.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from wedsync_perf.errors import InvalidValue

__all__ = ["HEADER_TIMEOUT_ENV", "HeaderTimeout", "http_protocol", "serve"]

PROTOCOL_NAME = "wedsync_perf.serving:HeaderTimeoutProtocol"

HEADER_TIMEOUT_ENV = "WEDSYNC_PERF_HEADER_TIMEOUT_S"
DEFAULT_HEADER_TIMEOUT_S = 10.0


def _header_timeout_s() -> float:
    raw = os.environ.get(HEADER_TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_HEADER_TIMEOUT_S
    except ValueError:
        raise InvalidValue(HEADER_TIMEOUT_ENV, raw, "a number of seconds") from None
    if not value > 0:
        raise InvalidValue(HEADER_TIMEOUT_ENV, raw, "positive seconds")
    return value


class HeaderTimeout:
    """Mixed in before one of uvicorn's HTTP protocols (which set `self.cycle` when a
    request's head is complete, and `self.loop`, `self.transport`)."""

    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    header_timeouts = 0  # connections closed for it, this process (class-wide)
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not before:  # a request's head arrived complete
            self._disarm()
        elif self._awaiting_head() and self._head_timer is None:
            self._arm()  # the first bytes of the next request on a kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _awaiting_head(self) -> bool:
        return self.cycle is None or bool(self.cycle.response_complete)

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expired(self) -> None:
        self._head_timer = None
        if self._awaiting_head() and not self.transport.is_closing():
            type(self).header_timeouts += 1
            self.transport.close()


def http_protocol() -> type[asyncio.Protocol]:
    """uvicorn's fastest available HTTP protocol with `HeaderTimeout` mixed in,
    reading the timeout from the environment now."""
    timeout_s = _header_timeout_s()
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # httptools is optional for uvicorn
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]
    protocol = _PROTOCOLS.get(Base)
    if protocol is None:
        protocol = type(f"HeaderTimeout{Base.__name__}", (HeaderTimeout, Base), {})
        _PROTOCOLS[Base] = protocol
    protocol.header_timeout_s = timeout_s  # type: ignore[attr-defined]
    return protocol


_PROTOCOLS: dict[type, type[asyncio.Protocol]] = {}


def __getattr__(name: str) -> Any:
    if name == "HeaderTimeoutProtocol":  # what uvicorn loads by name, in each worker
        return http_protocol()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    factory: bool = False,
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
    keep_alive_s: int = 5,
    graceful_shutdown_s: int = 10,
    **uvicorn_options: Any,
) -> None:
    """Serve `app` (an ASGI app, or an "module:attribute" import string, which
    `workers > 1` needs) until SIGINT/SIGTERM. `uvicorn_options` go to
    `uvicorn.Config` as they are."""
    import uvicorn

    for name, value in (("header_timeout_s", header_timeout_s), ("keep_alive_s", keep_alive_s),
                        ("graceful_shutdown_s", graceful_shutdown_s)):  # fmt: skip
        if not value > 0:
            raise InvalidValue(name, value, "positive seconds")
    os.environ[HEADER_TIMEOUT_ENV] = str(header_timeout_s)  # for spawned workers too
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=workers,
        factory=factory,
        http=PROTOCOL_NAME,
        timeout_keep_alive=keep_alive_s,
        timeout_graceful_shutdown=graceful_shutdown_s,
        **uvicorn_options,
    )
