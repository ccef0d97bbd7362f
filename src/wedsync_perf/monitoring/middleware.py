"""`MonitoringMiddleware`: pure ASGI, one timer and one `Recorder.record` per request.

Per HTTP request it records the route template, method, status class, priority class,
latency, response size, time to first byte (streamed responses), and whether a cache
served it. The end time is taken when the last body chunk is sent, so background tasks
that run after the response do not count. An exception is recorded as a 500 and
re-raised; a client that went away mid-response is recorded as 499. Lifespan and
websocket scopes pass straight through.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from wedsync_perf.monitoring.recorder import UNMATCHED_ROUTE, Recorder
from wedsync_perf.monitoring.routes import RouteResolver
from wedsync_perf.priorities import PriorityClass

__all__ = ["CACHE_SCOPE_KEY", "MonitoringMiddleware", "mark_cache_hit"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CACHE_SCOPE_KEY = "wedsync_perf.cache_hit"
CLIENT_CLOSED = 499  # nginx's code for "client closed request"


def mark_cache_hit(scope: Scope) -> None:
    """Called by a cache layer that answered this request from cache."""
    scope[CACHE_SCOPE_KEY] = True


class MonitoringMiddleware:
    """Wrap an ASGI app: `app = MonitoringMiddleware(app, recorder=recorder)`, or with
    FastAPI/Starlette `app.add_middleware(MonitoringMiddleware, recorder=recorder)`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        recorder: Recorder,
        resolver: RouteResolver | None = None,
        unmatched_priority: PriorityClass = PriorityClass.STANDARD,
        skip_paths: Collection[str] = (),
    ) -> None:
        """`skip_paths`: exact paths (relative to `root_path`) not to record, such as
        health probes and the metrics endpoint itself."""
        self.app = app
        self._skip = frozenset(skip_paths)
        self.recorder = recorder
        self.resolver = resolver or RouteResolver()
        self._unmatched_priority = unmatched_priority.value
        self._clock = time.perf_counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        entry_root_path = scope.get("root_path", "")
        if self._skip and scope["path"][len(entry_root_path) :] in self._skip:
            await self.app(scope, receive, send)
            return
        clock = self._clock
        started = clock()
        status = 0
        size = 0
        first_byte = 0.0
        finished = 0.0
        streamed = False
        disconnected = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, size, first_byte, finished, streamed, disconnected
            kind = message["type"]
            if kind == "http.response.body":
                body = message.get("body", b"")
                size += len(body)
                more = message.get("more_body", False)
                if not first_byte:
                    first_byte = clock()
                    streamed = more
                if not more:
                    finished = clock()
            elif kind == "http.response.start":
                status = message["status"]
            try:
                await send(message)
            except OSError:
                disconnected = True
                raise

        self.recorder.in_flight += 1
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            if not finished:
                status = CLIENT_CLOSED if disconnected else 500
                finished = clock()
            raise
        finally:
            self.recorder.in_flight -= 1
            end = finished or clock()
            if not finished and status and disconnected:
                status = CLIENT_CLOSED
            self._record(scope, entry_root_path, status or 500, end - started, size,
                         (first_byte - started) if streamed else None)  # fmt: skip

    def _record(
        self,
        scope: Scope,
        entry_root_path: str,
        status: int,
        duration: float,
        size: int,
        ttfb: float | None,
    ) -> None:
        resolved = self.resolver.resolve(scope, entry_root_path)
        if resolved is None:
            route, priority = UNMATCHED_ROUTE, self._unmatched_priority
        else:
            route, priority = resolved.template, resolved.priority
        self.recorder.record(
            route,
            scope.get("method", "GET"),
            status,
            priority,
            duration,
            size,
            bool(scope.get(CACHE_SCOPE_KEY)),
            ttfb,
        )
