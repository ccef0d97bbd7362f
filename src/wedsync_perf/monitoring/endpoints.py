"""ASGI endpoints of the monitoring layer, each behind a bearer token.

`/metrics` (Prometheus text format) and `/perf/stats` (JSON summary) expose what the API
is doing; they are refused with 401 and no detail without the token, compared in
constant time, and answer 404 when no token is configured (off by default).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from wedsync_perf.asgi import ASGIApp, Receive, Scope, Send, respond

__all__ = ["BearerGuard", "metrics_app", "stats_app"]


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Monitoring answers are never cached by anyone."""
    await respond(send, status, body, [(b"cache-control", b"no-store"), *(extra or [])],
                  content_type=content_type)  # fmt: skip


class BearerGuard:
    """Let a request through only with `Authorization: Bearer <token>` — or, with
    `basic=True` (pages a browser opens), HTTP Basic with the token as the password, and
    a Basic challenge so the browser asks for it."""

    def __init__(self, app: ASGIApp, token: str | None, *, basic: bool = False) -> None:
        self.app = app
        self._token = token.encode() if token else None
        self.basic = basic

    def _given(self, scope: Scope) -> bytes:
        for name, value in scope.get("headers", []):
            if name != b"authorization":
                continue
            if value[:7].lower() == b"bearer ":
                return bytes(value[7:].strip())
            if self.basic and value[:6].lower() == b"basic ":
                try:
                    decoded = base64.b64decode(value[6:].strip(), validate=True)
                except (ValueError, binascii.Error):
                    return b""
                return decoded.partition(b":")[2]
        return b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._token is None:
            await _respond(send, 404, b"", b"text/plain")
            return
        if not hmac.compare_digest(self._given(scope), self._token):
            challenge = b'Basic realm="wedsync-perf", charset="UTF-8"' if self.basic else b"Bearer"
            await _respond(send, 401, b"", b"text/plain", [(b"www-authenticate", challenge)])
            return
        await self.app(scope, receive, send)


def metrics_app(registry: CollectorRegistry) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await _respond(send, 200, generate_latest(registry), CONTENT_TYPE_LATEST.encode())

    return app


def stats_app(
    summarize: Callable[[float, bool], Awaitable[dict[str, Any]]], max_window_s: float
) -> ASGIApp:
    """JSON summary; `?window=SECONDS` (default 60) and `?scope=process|fleet`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            window = float(query.get("window", ["60"])[0])
            if not 1 <= window <= max_window_s:
                raise ValueError
        except ValueError:
            message = f"window must be a number of seconds between 1 and {max_window_s:g}"
            await _respond(send, 422, orjson.dumps({"detail": message}), b"application/json")
            return
        fleet = query.get("scope", ["fleet"])[0] != "process"
        body = orjson.dumps(await summarize(window, fleet))
        await _respond(send, 200, body, b"application/json")

    return app
