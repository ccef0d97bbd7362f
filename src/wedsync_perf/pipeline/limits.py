"""Limits on what a request may make the server hold, checked before any work.

`LimitsMiddleware` refuses, in the bytes FastAPI gives an `HTTPException`:

- 431 when the request has more than `max_headers` header lines, or its header names
  and values add up to more than `max_header_bytes`;
- 413 when the declared `Content-Length` exceeds the route's body cap — answered from
  the head alone, before a byte of the body is read — or when a body without one
  (chunked) goes past it: the app is then told the client left, and whatever it tries
  to answer is dropped.

A 413 carries `Connection: close`, so the server stops reading the rest. The body
cap is per route template (an import route takes more than a check-in); requests no
route matches get the default. The server protocol has its own, larger bound on the
raw request head (`wedsync_perf.serving`), which holds before any of this runs: a
server parses the whole head before an app sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from wedsync_perf.asgi import ASGIApp, Message, Receive, Scope, Send, respond
from wedsync_perf.errors import ConfigError
from wedsync_perf.pipeline.routing import ROUTE_KEY, ResolvedRoute

__all__ = ["LimitsMiddleware", "RequestLimits"]

_CLOSE = [(b"connection", b"close")]


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The bounds, with defaults that fit JSON APIs: 1 MiB of body, 32 KiB of headers
    in at most 100 lines. `route_body_bytes`: route template → its own body cap."""

    max_body_bytes: int = 1024 * 1024
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    route_body_bytes: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        caps = {"max_body_bytes": self.max_body_bytes, **self.route_body_bytes}
        for name, value in (*caps.items(), ("max_header_bytes", self.max_header_bytes),
                            ("max_headers", self.max_headers)):  # fmt: skip
            if value < 0:
                raise ConfigError(f"request limit {name}", "expected a non-negative number")

    def check_routes(self, templates: set[str]) -> None:
        """Raise `ConfigError` for a body cap naming no route: a typo would silently
        leave the route with the default."""
        unknown = sorted(set(self.route_body_bytes) - templates)
        if unknown:
            raise ConfigError("request limits", f"no route {unknown[0]!r} to give a body cap")


class LimitsMiddleware:
    """Enforce `RequestLimits`; runs inside the classifier (it reads the route)."""

    def __init__(self, app: ASGIApp, *, limits: RequestLimits) -> None:
        self.app = app
        self.limits = limits
        self._caps = dict(limits.route_body_bytes)
        self._headers_refusal = _detail("request headers too large")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits
        headers = scope.get("headers", ())
        size, declared, chunked = 0, None, False
        for key, value in headers:  # one pass: size, declared length, chunked or not
            size += len(key) + len(value)
            if key == b"content-length":
                declared = _length(value)
            elif key == b"transfer-encoding":
                chunked = True
        if len(headers) > limits.max_headers or size > limits.max_header_bytes:
            await respond(send, 431, self._headers_refusal, _CLOSE)
            return
        route: ResolvedRoute | None = scope.get(ROUTE_KEY)
        cap = (
            self._caps.get(route.template, limits.max_body_bytes)
            if route
            else limits.max_body_bytes
        )
        if declared is not None and declared > cap:
            await respond(send, 413, _too_large(cap), _CLOSE)
            return
        if declared is not None or not chunked:
            # A declared length the server reads no further than; without one and not
            # chunked, HTTP/1.1 says there is no body: nothing to count.
            await self.app(scope, receive, send)
            return
        await _Capped(cap, receive, send).run(self.app, scope)


class _Capped:
    """One request whose body has no declared length, counted as it is read."""

    __slots__ = ("cap", "read", "receive", "refused", "send", "started")

    def __init__(self, cap: int, receive: Receive, send: Send) -> None:
        self.cap = cap
        self.read = 0
        self.receive = receive
        self.send = send
        self.started = False
        self.refused = False

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        try:
            await app(scope, self._receive, self._send)
        except Exception:
            if not self.refused:
                raise
            # What the app raised over the disconnect it was told of is no error here.

    async def _receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self.receive()
        if message["type"] == "http.request":
            self.read += len(message.get("body", b""))
            if self.read > self.cap:
                self.refused = True
                if not self.started:
                    self.started = True
                    await respond(self.send, 413, _too_large(self.cap), _CLOSE)
                return {"type": "http.disconnect"}  # the app stops reading here
        return message

    async def _send(self, message: Message) -> None:
        if self.refused:
            return  # the 413 is the answer; whatever the app makes of the disconnect is not
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


def _length(value: bytes) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None  # the server rejects a malformed length before the app


def _too_large(cap: int) -> bytes:
    return _detail(f"request body larger than {cap} bytes")


def _detail(text: str) -> bytes:
    return orjson.dumps({"detail": text})
