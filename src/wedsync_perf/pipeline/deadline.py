"""Every request has an overall deadline, so nothing it waits on can hold it forever.

A request that outlives its class's deadline is cancelled where it waits (a statement,
a pool, a lock, a slow client's body) and answered 503 + `Retry-After`, if nothing has
been sent yet; a response already started is cut off, which the client sees as a
closed connection. Cancellation is what gives its connection and its pool-lane slot
back: every `async with` it is inside unwinds. The clock starts before admission, so
time spent waiting for room counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import MappingProxyType

from wedsync_perf.asgi import ASGIApp, Message, Receive, Scope, Send, respond
from wedsync_perf.errors import InvalidValue
from wedsync_perf.pipeline.routing import ROUTE_KEY, ResolvedRoute
from wedsync_perf.priorities import PriorityClass

__all__ = ["DEFAULT_DEADLINES_S", "DeadlineMiddleware", "Deadlines"]

DEFAULT_DEADLINES_S: Mapping[PriorityClass, float] = MappingProxyType(
    {
        # A supplier on site retries sooner than this; past it the answer is useless.
        PriorityClass.CRITICAL: 5.0,
        PriorityClass.STANDARD: 10.0,
        # A large import is a few seconds of COPY; a minute means something is stuck.
        PriorityClass.BULK: 60.0,
    }
)

_BODY = b'{"detail":"the request took too long; retry shortly"}'


class Deadlines:
    """The deadlines by priority class, and how many requests ran past them; shared by
    the middleware and whoever reports on it."""

    def __init__(
        self, seconds: Mapping[PriorityClass, float] = DEFAULT_DEADLINES_S, retry_after_s: int = 1
    ) -> None:
        """`seconds`: per priority class (a class left out keeps its default; a request
        no route matches, and an internal route, uses the standard one)."""
        merged = {**DEFAULT_DEADLINES_S, **seconds}
        for priority, value in merged.items():
            if not value > 0:
                raise InvalidValue(f"deadline ({priority.value})", value, "positive seconds")
        self.seconds = MappingProxyType(merged)
        self.retry_after = str(retry_after_s).encode()
        self.expired = 0


class DeadlineMiddleware:
    def __init__(self, app: ASGIApp, deadlines: Deadlines | None = None) -> None:
        self.app = app
        self.deadlines = deadlines if deadlines is not None else Deadlines()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route: ResolvedRoute | None = scope.get(ROUTE_KEY)
        priority = route.priority if route is not None else PriorityClass.STANDARD
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        deadlines = self.deadlines
        timeout = asyncio.timeout(deadlines.seconds[priority])
        try:
            async with timeout:
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if not timeout.expired():
                raise  # the app's own TimeoutError, not the deadline
            deadlines.expired += 1
            if started:
                return  # the client sees the connection end mid-response
            await respond(send, 503, _BODY, [
                (b"retry-after", deadlines.retry_after), (b"cache-control", b"no-store")])  # fmt: skip
