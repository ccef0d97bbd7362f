"""Priority admission control: when the API is busier than it can serve, shed the import
job, not the wedding.

Overload shows as a queue, and `AdaptiveLimit` steers by how long work waits in it:
AIMD. While any signal says "congested" the limit shrinks by a factor each tick (20 ms);
otherwise it grows by one while in use, and when quiet and mostly unused it goes back to
where it started (TCP's restart after idle), so the next burst is not met at the floor.

Three signals, each over the last three ticks so that one stall (a GC pause, a slow
synchronous call) is not overload:
- the event loop's lag (least late of three 20 ms timer ticks > 10 ms): every ready
  callback waits behind all the others;
- the database pool's queue (`LanedPool.queueing_delay_s`, the oldest critical or
  standard waiter > 10 ms, passed in `delay_signals`): a request holds its connection
  across several awaits, so this queue forms first — measured: 100+ waiters while the
  loop ran 1–4 ms late;
- the critical requests' own time in the app (median > 25 ms with at least 4 requests in
  flight, so a route that is merely slow on its own sheds nothing): what the wedding day
  needs, and what caught CPU saturation that the timer under-read (critical median
  620 ms with the lag at 1 ms).
An in-app latency gradient (Netflix concurrency-limits' Gradient2, this module's first
version) was measured to fail here: its long-term baseline followed the queueing latency
up, and the limit grew past anything in flight.

`AdmissionMiddleware` (pure ASGI) takes each request's priority from the route the
classifier resolved (before routing) and admits it while the in-flight count is below
its class's share of the limit: bulk may use `bulk_share` of it, standard
`standard_share`. A refused bulk or standard request gets 503 with `Retry-After` at
once — no database, no authentication, a few tens of µs — which is what drains the
loop. Critical requests in flight count against the others' shares, so they crowd out
standard and bulk work, never the reverse.

Critical work has room of its own: it is admitted while fewer than `critical_floor`
critical requests are in flight, or while everything in flight is under the adaptive
limit. The floor is what keeps a slow database (which makes the limit back off) from
starving cached critical reads: it is set above the pool's size, so requests holding
connections cannot fill it alone. Beyond both, a critical request waits in a
`CriticalQueue` (adaptive LIFO, CoDel's rule for how long) and is answered 503 +
`Retry-After` when its wait runs out: when critical work alone exceeds what the instance
serves, the excess is refused within tens of milliseconds instead of everyone timing
out. While critical requests wait, no standard or bulk request is admitted. Internal
routes (health probes, monitoring endpoints) are never shed; a request no route matches
counts as standard.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from wedsync_perf.asgi import ASGIApp, Receive, Scope, Send, respond
from wedsync_perf.background import BackgroundLoop
from wedsync_perf.errors import InvalidValue
from wedsync_perf.pipeline.routing import ROUTE_KEY, ResolvedRoute
from wedsync_perf.priorities import PriorityClass
from wedsync_perf.scaling.critical_queue import CriticalQueue

__all__ = ["AdaptiveLimit", "AdmissionController", "AdmissionMiddleware"]


@dataclass
class AdaptiveLimit:
    """AIMD concurrency limit (TCP's rule, with a latency signal for packet loss)."""

    initial: int = 20
    min_limit: int = 1  # at the floor only critical work flows (and a lone request)
    max_limit: int = 1000
    backoff: float = 0.8  # per congested tick: from 1,000 to 20 in under 0.4 s
    limit: float = field(init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.initial <= self.max_limit:
            raise InvalidValue(
                "min_limit/initial/max_limit",
                (self.min_limit, self.initial, self.max_limit),
                "1 <= min_limit <= initial <= max_limit",
            )
        if not 0 < self.backoff < 1:
            raise InvalidValue("backoff", self.backoff, "a factor strictly between 0 and 1")
        self.limit = float(self.initial)

    def update(self, congested: bool, in_flight: int) -> None:
        """One tick: whether latency says the service is congested, and the requests in
        flight."""
        if congested:
            self.limit = max(float(self.min_limit), self.limit * self.backoff)
        elif in_flight >= self.limit / 2:
            self.limit = min(float(self.max_limit), self.limit + 1)
        else:  # quiet and little in use: start from `initial` again, so the next burst
            self.limit = max(self.limit, float(self.initial))  # is not met at the floor


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
        retry_after_s: int = 1,
        tick_s: float = 0.02,
        critical_target_s: float = 0.025,
        critical_min_in_flight: int = 4,
        delay_target_s: float = 0.01,
        delay_signals: Sequence[Callable[[], float]] = (),
        critical_floor: int = 32,
        queue: CriticalQueue | None = None,
    ) -> None:
        """`critical_floor`: critical requests always admitted while fewer are in
        flight (above the database pool's size; see the module's docstring). `queue`:
        where critical requests beyond the limit wait (defaults: 500 ms, 20 ms once
        overloaded)."""
        if critical_floor < 1:
            raise InvalidValue("critical_floor", critical_floor, "at least 1 request")
        if not 0 < bulk_share <= standard_share <= 1:
            raise InvalidValue(
                "bulk_share/standard_share",
                (bulk_share, standard_share),
                "0 < bulk_share <= standard_share <= 1",
            )
        self.limit = limit or AdaptiveLimit()
        self.shares = {PriorityClass.BULK: bulk_share, PriorityClass.STANDARD: standard_share}
        self.retry_after = str(retry_after_s).encode()
        self.in_flight = 0
        self.critical_in_flight = 0
        self.critical_floor = critical_floor
        self.queue = queue if queue is not None else CriticalQueue()  # empty is falsy
        self.counters = _Counters()
        self.tick_s = tick_s
        self.critical_target_s = critical_target_s
        self.critical_min_in_flight = critical_min_in_flight
        self.delay_target_s = delay_target_s
        self.delay_signals = list(delay_signals)
        self.loop_lag_s = self.queueing_delay_s = self.critical_median_s = 0.0
        self._recent_lag: deque[float] = deque(maxlen=3)
        self._recent_delay: deque[float] = deque(maxlen=3)
        self._critical: deque[list[float]] = deque([[] for _ in range(3)], maxlen=3)
        self.ticks = self.congested_ticks = 0
        self._watcher = BackgroundLoop(self._watch, "wedsync-perf-loop-lag")

    def add_delay_signal(self, signal: Callable[[], float]) -> None:
        """Another queue's current wait in seconds (e.g. `LanedPool.queueing_delay_s`),
        for resources created after the controller, as a pool is at startup."""
        self.delay_signals.append(signal)

    def watch_loop(self) -> None:
        """Start measuring event-loop lag (call from the running loop, e.g. at startup)."""
        self._watcher.start()

    async def stop(self) -> None:
        await self._watcher.stop()

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.tick_s
            await asyncio.sleep(self.tick_s)
            self.record_tick(loop.time() - expected)

    def record_critical(self, latency_s: float) -> None:
        """An admitted critical request's time in the app (the middleware calls it)."""
        self._critical[-1].append(latency_s)

    def record_tick(self, late_s: float) -> None:
        """One watcher tick: how late it fired, the other queues' waits, the critical
        requests finished since the last tick — and the limit's update from them. Each
        figure covers the last three ticks: the least of each delay (overload makes every
        tick late; one stall makes one tick late, not three), the median critical time."""
        self._recent_lag.append(max(0.0, late_s))
        self.loop_lag_s = min(self._recent_lag)
        self._recent_delay.append(max((signal() for signal in self.delay_signals), default=0.0))
        self.queueing_delay_s = max(self.loop_lag_s, min(self._recent_delay))
        window = sorted(x for tick in self._critical for x in tick)
        self.critical_median_s = window[len(window) // 2] if window else 0.0
        self._critical.append([])
        # Slow critical answers mean queueing only with work in flight to queue behind:
        # a route that is merely slow on its own must not shed everything else.
        congested = self.queueing_delay_s > self.delay_target_s or (
            self.critical_median_s > self.critical_target_s
            and self.in_flight >= self.critical_min_in_flight
        )
        self.ticks += 1
        self.congested_ticks += congested
        self.limit.update(congested, self.in_flight)
        self.queue.expire()  # the limit may have grown: wake who now fits
        while self.queue and self._room_for_critical() and self.queue.hand_over():
            pass

    def admits(self, priority: PriorityClass) -> bool:
        """Whether a request of `priority` may go in now, without waiting."""
        if self.queue:  # critical requests are waiting: nothing overtakes them
            return False
        if priority is PriorityClass.CRITICAL:
            return self._room_for_critical()
        return self.in_flight < self.limit.limit * self.shares[priority]

    def _room_for_critical(self) -> bool:
        woken = self.queue.woken  # admitted already, entering on their next turn
        in_flight = self.in_flight + woken
        if in_flight >= self.limit.max_limit:
            return False
        return self.critical_in_flight + woken < self.critical_floor or in_flight < self.limit.limit

    def may_wait(self, priority: PriorityClass) -> bool:
        """Only critical work waits, and not beyond `max_limit` (the hard cap)."""
        return priority is PriorityClass.CRITICAL and self.in_flight < self.limit.max_limit

    async def wait_for_room(self) -> bool:
        """A critical request that `admits` turned away waits in the queue: True once
        it may go in, False when its wait ran out (answer 503)."""
        return await self.queue.wait()

    def enter(self, priority: PriorityClass) -> None:
        self.counters.admitted[priority] += 1
        self.in_flight += 1
        if priority is PriorityClass.CRITICAL:
            self.critical_in_flight += 1

    def leave(self, priority: PriorityClass, latency_s: float) -> None:
        self.in_flight -= 1
        if priority is PriorityClass.CRITICAL:
            self.critical_in_flight -= 1
            self.record_critical(latency_s)
        if self.queue and self._room_for_critical():
            self.queue.hand_over()

    def report(self) -> dict[str, Any]:
        return {
            "limit": round(self.limit.limit, 1),
            "in_flight": self.in_flight,
            "loop_lag_ms": round(self.loop_lag_s * 1000, 2),
            "queueing_delay_ms": round(self.queueing_delay_s * 1000, 2),
            "critical_median_ms": round(self.critical_median_s * 1000, 2),
            "ticks": self.ticks,
            "congested_ticks": self.congested_ticks,
            "critical_in_flight": self.critical_in_flight,
            "queued": len(self.queue),
            "queue_overloaded": self.queue.overloaded(),
            "queue_expired": self.queue.expired,
            "admitted": {p.value: n for p, n in self.counters.admitted.items()},
            "rejected": {p.value: n for p, n in self.counters.rejected.items()},
        }


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, controller: AdmissionController | None = None) -> None:
        self.app = app
        self.controller = controller or AdmissionController()
        self._bodies = {p: _shed_body(p) for p in PriorityClass}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: ResolvedRoute | None = scope.get(ROUTE_KEY)
        if scope["type"] != "http" or (route is not None and route.internal):
            await self.app(scope, receive, send)
            return
        control = self.controller
        priority = route.priority if route is not None else PriorityClass.STANDARD
        if not control.admits(priority) and not (
            control.may_wait(priority) and await control.wait_for_room()
        ):
            control.counters.rejected[priority] += 1
            await respond(send, 503, self._bodies[priority], [
                (b"retry-after", control.retry_after), (b"cache-control", b"no-store")])  # fmt: skip
            return
        control.enter(priority)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            control.leave(priority, time.perf_counter() - started)


def _shed_body(priority: PriorityClass) -> bytes:
    return (
        b'{"detail":"over capacity: ' + priority.value.encode() + b' request shed; retry shortly"}'
    )
