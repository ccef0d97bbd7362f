"""Serving an app with uvicorn, with the connection bounds uvicorn leaves open.

uvicorn closes a keep-alive connection idle between requests (`timeout_keep_alive`),
but not one that never sends a request, or sends half a header and stops: each holds
a descriptor for as long as the client likes. `HeaderTimeout` closes a connection whose
request head is not complete within `header_timeout_s` of its first byte or of the
connection opening (nginx's `client_header_timeout`). Nor does uvicorn's httptools
protocol bound a request head's size: it buffers a single 8 MB header whole before the
app sees the request. `HeadLimit` answers 431 and stops reading once a head passes
`max_head_bytes` (h11, the fallback protocol, has its own 16 KiB bound). Finer header
limits (count, total) and bodies are the app's to bound: `pipeline.LimitsMiddleware`
refuses them, and a request's overall deadline (`pipeline.Deadlines`) covers reading
them.

Logs go through the sanitiser (`wedsync_perf.sanitize`): uvicorn's handlers and the
root logger get it in every worker, unless a `log_config` of the caller's is given.

On SIGTERM uvicorn stops accepting, lets in-flight requests finish for
`graceful_shutdown_s`, then cancels them, and runs the app's shutdown.

Worker processes are spawned and load the protocol by name
(`wedsync_perf.serving:HeaderTimeoutProtocol`), so the header timeout and the head cap
travel in the environment (`WEDSYNC_PERF_HEADER_TIMEOUT_S`,
`WEDSYNC_PERF_MAX_HEAD_BYTES`), not in a closure.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from wedsync_perf.errors import InvalidValue

__all__ = [
    "HEADER_TIMEOUT_ENV",
    "MAX_HEAD_BYTES_ENV",
    "HeadLimit",
    "HeaderTimeout",
    "http_protocol",
    "serve",
]

PROTOCOL_NAME = "wedsync_perf.serving:HeaderTimeoutProtocol"

HEADER_TIMEOUT_ENV = "WEDSYNC_PERF_HEADER_TIMEOUT_S"
DEFAULT_HEADER_TIMEOUT_S = 10.0
MAX_HEAD_BYTES_ENV = "WEDSYNC_PERF_MAX_HEAD_BYTES"
DEFAULT_MAX_HEAD_BYTES = 64 * 1024


def _from_env(name: str, default: float, convert: type[float], low: float, accepted: str) -> float:
    """Environment variable `name`, at least `low` (exclusive for 0); `default` unset."""
    raw = os.environ.get(name, "")
    try:
        value = convert(raw) if raw else default
    except ValueError:
        raise InvalidValue(name, raw, accepted) from None
    if not (value > 0 if low == 0 else value >= low):
        raise InvalidValue(name, raw, accepted)
    return value


def _header_timeout_s() -> float:
    return _from_env(HEADER_TIMEOUT_ENV, DEFAULT_HEADER_TIMEOUT_S, float, 0, "positive seconds")


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


def _max_head_bytes() -> int:
    return int(
        _from_env(MAX_HEAD_BYTES_ENV, DEFAULT_MAX_HEAD_BYTES, int, 1024, "at least 1024 bytes")
    )


_HEAD_REFUSAL = b'{"detail":"request headers too large"}'
_HEAD_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_HEAD_REFUSAL), _HEAD_REFUSAL)
)


class HeadLimit:
    """Mixed in before uvicorn's httptools protocol (whose parser calls
    `on_message_begin` and `on_headers_complete`). Reads are counted while a head is
    being parsed; past `max_head_bytes` the client gets a 431 and a half-close, and
    nothing more is read (the header timeout closes the connection). The bound is
    approximate by one read (at most 256 KiB): the read in which a head begins is not
    counted."""

    max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES
    heads_refused = 0  # this process (class-wide)
    transport: asyncio.Transport
    _in_head = False
    _head_bytes = 0
    _refused = False

    def on_message_begin(self) -> None:
        super().on_message_begin()  # type: ignore[misc]
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        was_in_head = self._in_head
        super().data_received(data)  # type: ignore[misc]
        if was_in_head and self._in_head:  # the whole read was head
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse()

    def _refuse(self) -> None:
        self._refused = True
        type(self).heads_refused += 1
        transport = self.transport
        transport.pause_reading()
        transport.write(_HEAD_RESPONSE)
        if transport.can_write_eof():
            transport.write_eof()  # the client reads the 431, then the end


def http_protocol() -> type[asyncio.Protocol]:
    """uvicorn's fastest available HTTP protocol with `HeaderTimeout` mixed in,
    reading the timeout from the environment now."""
    timeout_s = _header_timeout_s()
    head_bytes = _max_head_bytes()
    mixins: tuple[type, ...] = (HeaderTimeout, HeadLimit)
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # httptools is optional for uvicorn; h11 bounds heads itself
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

        mixins = (HeaderTimeout,)
    protocol = _PROTOCOLS.get(Base)
    if protocol is None:
        protocol = type(f"HeaderTimeout{Base.__name__}", (*mixins, Base), {})
        _PROTOCOLS[Base] = protocol
    protocol.header_timeout_s = timeout_s  # type: ignore[attr-defined]
    protocol.max_head_bytes = head_bytes  # type: ignore[attr-defined]
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
    max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
    keep_alive_s: int = 5,
    graceful_shutdown_s: int = 10,
    **uvicorn_options: Any,
) -> None:
    """Serve `app` (an ASGI app, or an "module:attribute" import string, which
    `workers > 1` needs) until SIGINT/SIGTERM. `max_head_bytes`: the largest request
    head (request line and headers) read before a 431. `uvicorn_options` go to
    `uvicorn.Config` as they are; without a `log_config`, uvicorn's own gets the log
    sanitiser."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from wedsync_perf.sanitize import sanitized_log_config

    for name, value in (("header_timeout_s", header_timeout_s), ("keep_alive_s", keep_alive_s),
                        ("graceful_shutdown_s", graceful_shutdown_s)):  # fmt: skip
        if not value > 0:
            raise InvalidValue(name, value, "positive seconds")
    if max_head_bytes < 1024:
        raise InvalidValue("max_head_bytes", max_head_bytes, "at least 1024 bytes")
    os.environ[HEADER_TIMEOUT_ENV] = str(header_timeout_s)  # for spawned workers too
    os.environ[MAX_HEAD_BYTES_ENV] = str(max_head_bytes)
    uvicorn_options.setdefault("log_config", sanitized_log_config(LOGGING_CONFIG))
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
