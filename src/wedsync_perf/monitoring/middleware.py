"""`MonitoringMiddleware`: pure ASGI, one timer and one `Recorder.record` per request.

It sits right inside `ClassifierMiddleware` (which puts the request's `ResolvedRoute` in
the scope), so every outcome is recorded under its route and class — refusals made
before routing (admission's 503, the 401 and 429 of access control) included. Routes
the table marks internal (probes, the monitoring endpoints) are not recorded.

Per HTTP request it records the route template, method, status class, priority class,
latency, response size, time to first byte (streamed responses), and whether a cache
served it. The end time is taken when the last body chunk is sent, so background tasks
that run after the response do not count. An exception is recorded as a 500 and
re-raised; a client that went away mid-response is recorded as 499. Lifespan and
websocket scopes pass straight through.
"""

from __future__ import annotations

import logging
import time

from wedsync_perf.asgi import ASGIApp, Message, Receive, Scope, Send
from wedsync_perf.monitoring.recorder import UNMATCHED_ROUTE, Recorder
from wedsync_perf.pipeline.routing import ROUTE_KEY, ResolvedRoute
from wedsync_perf.priorities import PriorityClass

__all__ = ["CACHE_SCOPE_KEY", "MonitoringMiddleware", "mark_cache_hit"]

_log = logging.getLogger(__name__)

CACHE_SCOPE_KEY = "wedsync_perf.cache_hit"
CLIENT_CLOSED = 499  # nginx's code for "client closed request"


def mark_cache_hit(scope: Scope) -> None:
    """Called by a cache layer that answered this request from cache."""
    scope[CACHE_SCOPE_KEY] = True


class MonitoringMiddleware:
    """`ClassifierMiddleware(MonitoringMiddleware(app, recorder=recorder), table=…)`;
    with FastAPI/Starlette, add this first and the classifier after it (the last added
    runs outermost)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        recorder: Recorder,
        unmatched_priority: PriorityClass = PriorityClass.STANDARD,
    ) -> None:
        self.app = app
        self.recorder = recorder
        self._unmatched_priority = unmatched_priority.value
        self._clock = time.perf_counter
        self._warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route: ResolvedRoute | None = scope.get(ROUTE_KEY)
        if route is not None and route.internal:
            await self.app(scope, receive, send)
            return
        if route is None and ROUTE_KEY not in scope and not self._warned:
            self._warned = True
            _log.warning("no ClassifierMiddleware outside MonitoringMiddleware: requests "
                         "are recorded as %s", UNMATCHED_ROUTE)  # fmt: skip
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
            self._record(scope, route, status or 500, end - started, size,
                         (first_byte - started) if streamed else None)  # fmt: skip

    def _record(
        self,
        scope: Scope,
        resolved: ResolvedRoute | None,
        status: int,
        duration: float,
        size: int,
        ttfb: float | None,
    ) -> None:
        if resolved is None:
            route, priority = UNMATCHED_ROUTE, self._unmatched_priority
        else:
            route, priority = resolved.template, resolved.priority.value
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
