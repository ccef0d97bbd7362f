"""ASGI endpoints of the dashboard: the page, its assets, and the event stream."""

from __future__ import annotations

import asyncio
import contextlib
import time
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import orjson

from wedsync_perf.asgi import ASGIApp, Receive, Scope, Send
from wedsync_perf.dashboard.data import snapshot
from wedsync_perf.monitoring.endpoints import BearerGuard

if TYPE_CHECKING:
    from wedsync_perf.monitoring.monitor import Monitor

__all__ = ["dashboard_endpoints"]

_TYPES = {".js": b"text/javascript; charset=utf-8", ".css": b"text/css; charset=utf-8",
          ".html": b"text/html; charset=utf-8"}  # fmt: skip
_ASSETS = ("dashboard.js", "dashboard.css", "uPlot.iife.min.js", "uPlot.min.css")
# The page loads only its own files, talks only to its own origin.
_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
    b" img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
)


def _static(name: str) -> bytes:
    return files("wedsync_perf.dashboard").joinpath("static", name).read_bytes()


def _file_app(body: bytes, content_type: bytes, cache: bytes) -> ASGIApp:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", cache),
        (b"content-security-policy", _CSP),
        (b"x-content-type-options", b"nosniff"),
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


class _Snapshots:
    """One snapshot per `interval_s`, shared by every open page."""

    def __init__(self, monitor: Monitor, interval_s: float) -> None:
        self.monitor = monitor
        self.interval_s = interval_s
        self._last: tuple[float, bytes] | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> bytes:
        async with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] >= self.interval_s:
                body = orjson.dumps(await snapshot(self.monitor))
                self._last = (now, body)
            return self._last[1]


def _events_app(snapshots: _Snapshots) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store"),
                   (b"x-accel-buffering", b"no")]  # fmt: skip
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            while not gone.is_set():
                payload = await snapshots.get()
                message = b"event: snapshot\ndata: " + payload + b"\n\n"
                await send({"type": "http.response.body", "body": message, "more_body": True})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gone.wait(), snapshots.interval_s)
        except OSError:
            pass  # the client went away mid-send
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    return app


def dashboard_endpoints(monitor: Monitor, interval_s: float = 5.0) -> dict[str, ASGIApp]:
    """Path → ASGI app for the page (`/perf`), its assets and its stream, to mount
    beside `monitor.endpoints()`: guarded by the same token, so one secret opens both."""
    snapshots = _Snapshots(monitor, interval_s)
    apps: dict[str, Any] = {
        "/perf": _file_app(_static("index.html"), _TYPES[".html"], b"no-store"),
        "/perf/events": _events_app(snapshots),
    }
    for name in _ASSETS:
        suffix = name[name.rfind(".") :]
        apps[f"/perf/static/{name}"] = _file_app(_static(name), _TYPES[suffix], b"max-age=3600")
    return {path: BearerGuard(app, monitor.token, basic=True) for path, app in apps.items()}
