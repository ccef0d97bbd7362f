"""Priority admission control: when the API is busier than it can serve, shed the import
job, not the wedding.

`AdaptiveLimit` estimates how many requests the service can have in flight before
latency climbs — Netflix concurrency-limits' gradient algorithm: the ratio of the
long-term (no-load) latency to the recent latency, times the current limit, plus a
small queue allowance, smoothed. While latency stays near its baseline the limit grows;
when queueing inflates latency it shrinks.

`AdmissionMiddleware` (pure ASGI) classifies each request by its route's declared
priority *before* routing, and admits it only while the in-flight count is below its
class's share of the limit: bulk may use `bulk_share` of it, standard `standard_share`;
critical work is held only by `max_limit`, never by the adaptive limit (measured: letting
the limit shed critical requests cost a third of them under overload, for no gain). A refused request gets 503 with `Retry-After` at once — never a
wait in a queue it might not leave. Health probes are never shed.

In one Python process, overload queues *before* the app: requests wait in the event
loop, where no middleware sees them, and the in-app latency the limit learns from stays
low. So the controller also watches event-loop lag (`watch_loop()`): while the loop runs
more than `lag_shed_s` late (on each of the last five 20 ms ticks: sustained, not one
stall) with `lag_min_in_flight` requests in flight, only critical requests are admitted — shedding is cheap
(no database, no authentication), which is what drains the loop.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from wedsync_perf.background import BackgroundLoop
from wedsync_perf.priorities import PriorityClass, priority_table

__all__ = ["AdaptiveLimit", "AdmissionController", "AdmissionMiddleware"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PARAM = re.compile(r"\{[^}]+\}")


@dataclass
class AdaptiveLimit:
    """Gradient concurrency limit (Netflix concurrency-limits `Gradient2Limit`)."""

    initial: int = 20
    min_limit: int = 4
    max_limit: int = 1000
    smoothing: float = 0.2
    tolerance: float = 2.0  # latency may rise this much over baseline before shrinking
    long_window: int = 600  # samples in the baseline's exponential average
    limit: float = field(init=False)
    long_rtt: float = field(init=False, default=0.0)
    short_rtt: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.initial <= self.max_limit:
            raise ValueError("need 1 <= min_limit <= initial <= max_limit")
        self.limit = float(self.initial)

    def sample(self, rtt_s: float, in_flight: int) -> None:
        """One finished request's latency and the in-flight count it saw."""
        if rtt_s <= 0:
            return
        if self.long_rtt == 0.0:
            self.long_rtt = self.short_rtt = rtt_s
        self.short_rtt = 0.5 * self.short_rtt + 0.5 * rtt_s
        self.long_rtt += (rtt_s - self.long_rtt) / self.long_window
        if self.long_rtt / self.short_rtt > 2:  # recovering from a bad stretch: forget it
            self.long_rtt *= 0.95
        if in_flight < self.limit / 2:  # an idle service says nothing about its limit
            return
        gradient = max(0.5, min(1.0, self.tolerance * self.long_rtt / self.short_rtt))
        queue = math.sqrt(self.limit)
        target = self.limit * gradient + queue
        new = self.limit * (1 - self.smoothing) + target * self.smoothing
        self.limit = max(self.min_limit, min(self.max_limit, new))


@dataclass
class _Counters:
    admitted: dict[PriorityClass, int] = field(
        default_factory=lambda: dict.fromkeys(PriorityClass, 0)
    )
    rejected: dict[PriorityClass, int] = field(
        default_factory=lambda: dict.fromkeys(PriorityClass, 0)
    )


class AdmissionController:
    """The limit, the class shares, the in-flight count and the counters; shared by the
    middleware and whoever reports on it (`report()` for `/perf/stats`)."""

    def __init__(
        self,
        *,
        limit: AdaptiveLimit | None = None,
        bulk_share: float = 0.5,
        standard_share: float = 0.85,
        exempt_paths: frozenset[str] = frozenset({"/health/live", "/health/ready"}),
        retry_after_s: int = 1,
        lag_shed_s: float = 0.05,
        lag_interval_s: float = 0.02,
        lag_min_in_flight: int = 8,
    ) -> None:
        if not 0 < bulk_share <= standard_share <= 1:
            raise ValueError("need 0 < bulk_share <= standard_share <= 1")
        self.limit = limit or AdaptiveLimit()
        self.shares = {PriorityClass.BULK: bulk_share, PriorityClass.STANDARD: standard_share,
                       PriorityClass.CRITICAL: 1.0}  # fmt: skip
        self.exempt = exempt_paths
        self.retry_after = str(retry_after_s).encode()
        self.in_flight = 0
        self.counters = _Counters()
        self.lag_shed_s = lag_shed_s
        self.lag_interval_s = lag_interval_s
        self.lag_min_in_flight = lag_min_in_flight
        self.loop_lag_s = 0.0
        self._recent: deque[float] = deque(maxlen=5)
        self._last_tick = 0.0
        self._routes: dict[str, list[tuple[re.Pattern[str], PriorityClass]]] | None = None
        self._watcher = BackgroundLoop(self._watch, "wedsync-perf-loop-lag")

    def watch_loop(self) -> None:
        """Start measuring event-loop lag (call from the running loop, e.g. at startup)."""
        self._watcher.start()

    async def stop(self) -> None:
        await self._watcher.stop()

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.lag_interval_s
            await asyncio.sleep(self.lag_interval_s)
            self.record_tick(loop.time() - expected)

    def record_tick(self, late_s: float) -> None:
        """One watcher tick's lateness. The lag is the least late of the last 5 ticks:
        overload makes every tick late; one stall (a slow synchronous call, a GC pause)
        makes one tick late, not five."""
        self._recent.append(max(0.0, late_s))
        self.loop_lag_s = min(self._recent)
        self._last_tick = time.monotonic()

    def classify(self, scope: Scope, routes: Any) -> PriorityClass:
        """The declared priority of the route `scope` will reach (before routing)."""
        if self._routes is None:  # built once: per method, so a request scans only its own
            table: dict[str, list[tuple[re.Pattern[str], PriorityClass]]] = {}
            for (method, template), priority in priority_table(routes).items():
                table.setdefault(method, []).append((_regex(template), priority))
            table.setdefault("HEAD", []).extend(table.get("GET", []))
            self._routes = table
        path = scope["path"]
        for pattern, priority in self._routes.get(scope["method"], ()):
            if pattern.fullmatch(path):
                return priority
        return PriorityClass.STANDARD

    def _lag_is_current(self) -> bool:
        """A lag figure older than a second says nothing about now: an overloaded loop
        still ticks (late), so silence means the watcher is not running on this loop."""
        return time.monotonic() - self._last_tick < 1.0

    def admits(self, priority: PriorityClass) -> bool:
        if priority is PriorityClass.CRITICAL:
            return self.in_flight < self.limit.max_limit
        overloaded = self.in_flight >= self.lag_min_in_flight and self.loop_lag_s > self.lag_shed_s
        if overloaded and self._lag_is_current():  # a late loop *and* requests piling up
            return False
        return self.in_flight < self.limit.limit * self.shares[priority]

    def report(self) -> dict[str, Any]:
        return {
            "limit": round(self.limit.limit, 1),
            "in_flight": self.in_flight,
            "loop_lag_ms": round(self.loop_lag_s * 1000, 2),
            "admitted": {p.value: n for p, n in self.counters.admitted.items()},
            "rejected": {p.value: n for p, n in self.counters.rejected.items()},
        }


class AdmissionMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        controller: AdmissionController | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.controller = controller or AdmissionController()
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        control = self.controller
        if scope["type"] != "http" or scope["path"] in control.exempt:
            await self.app(scope, receive, send)
            return
        routes = getattr(scope.get("app"), "routes", None) or getattr(self.app, "routes", [])
        priority = control.classify(scope, routes)
        if not control.admits(priority):
            control.counters.rejected[priority] += 1
            await _reject(send, control.retry_after, priority)
            return
        control.counters.admitted[priority] += 1
        control.in_flight += 1
        seen = control.in_flight
        started = self.clock()
        try:
            await self.app(scope, receive, send)
        finally:
            control.in_flight -= 1
            control.limit.sample(self.clock() - started, seen)


def _regex(template: str) -> re.Pattern[str]:
    parts, at = [], 0
    for match in _PARAM.finditer(template):
        parts.append(re.escape(template[at : match.start()]))
        parts.append(".*" if ":path" in match.group(0) else "[^/]+")
        at = match.end()
    parts.append(re.escape(template[at:]))
    return re.compile("".join(parts))


async def _reject(send: Send, retry_after: bytes, priority: PriorityClass) -> None:
    body = (
        b'{"detail":"over capacity: '
        + priority.value.encode()
        + b' work is shed first; retry shortly"}'
    )
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", retry_after), (b"cache-control", b"no-store")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
