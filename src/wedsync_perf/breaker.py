"""The circuit breaker every outbound dependency goes through (the cache's Redis, the
balancer's upstreams): when it keeps failing, callers stop waiting on it, and it is
tried again, one call at a time, by itself.

* **closed**: calls go through; a `TripRule` watches their outcomes and decides when to
  open (the cache: consecutive failures; the balancer: a failure rate over a window).
* **open**: every call is refused until `cooldown_s` has passed.
* **half-open**: exactly one call, the probe, is out; every other caller is refused.
  The probe's success closes the breaker, its failure opens it again. A probe that
  has not reported within `cooldown_s` (cancelled, lost) counts as gone: the next
  caller becomes the probe.

Every state change is a lookup in `TRANSITIONS`; the rest of the class only decides
which event an outcome is. An outcome reported in half-open is taken as the probe's;
one reported while open (a call let through before the breaker opened) changes nothing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from wedsync_perf.errors import InvalidValue

__all__ = [
    "TRANSITIONS",
    "BreakerEvent",
    "BreakerState",
    "CircuitBreaker",
    "ConsecutiveFailures",
    "FailureRate",
    "TripRule",
]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerEvent(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"  # a failure the trip rule tolerates (or any failure when not closed)
    TRIP = "trip"  # an outcome after which the trip rule says "open"
    PROBE = "probe"  # the wait is over: the caller asking now goes out as the probe


_S, _E = BreakerState, BreakerEvent
TRANSITIONS: Mapping[tuple[BreakerState, BreakerEvent], BreakerState] = MappingProxyType(
    {
        (_S.CLOSED, _E.SUCCESS): _S.CLOSED,
        (_S.CLOSED, _E.FAILURE): _S.CLOSED,
        (_S.CLOSED, _E.TRIP): _S.OPEN,
        (_S.OPEN, _E.SUCCESS): _S.OPEN,
        (_S.OPEN, _E.FAILURE): _S.OPEN,
        (_S.OPEN, _E.PROBE): _S.HALF_OPEN,
        (_S.HALF_OPEN, _E.SUCCESS): _S.CLOSED,
        (_S.HALF_OPEN, _E.FAILURE): _S.OPEN,
        (_S.HALF_OPEN, _E.PROBE): _S.HALF_OPEN,  # the last probe overran: a new one
    }
)
"""(state, event) → next state. Pairs not listed cannot occur: the rule is consulted
only while closed, and a closed breaker needs no probe."""


class TripRule(Protocol):
    """When a closed breaker opens. It sees only outcomes recorded while closed and is
    reset whenever the breaker changes state."""

    def record(self, failed: bool, now: float) -> bool:
        """Take one outcome; True when the breaker should open now."""
        ...

    def reset(self) -> None: ...


class ConsecutiveFailures:
    """Open after `threshold` failures in a row (a success starts the count again)."""

    def __init__(self, threshold: int = 5) -> None:
        if threshold < 1:
            raise InvalidValue("threshold", threshold, "at least 1 failure")
        self.threshold = threshold
        self._run = 0

    def record(self, failed: bool, now: float) -> bool:
        self._run = self._run + 1 if failed else 0
        return self._run >= self.threshold

    def reset(self) -> None:
        self._run = 0


class FailureRate:
    """Open when at least `ratio` of the calls of the last `window_s` failed, counting
    only once there were `min_calls` of them (a few failures of a quiet client are
    not an outage)."""

    def __init__(self, ratio: float = 0.5, min_calls: int = 20, window_s: float = 10.0) -> None:
        if not 0 < ratio <= 1:
            raise InvalidValue("ratio", ratio, "a share of calls in (0, 1]")
        if min_calls < 1:
            raise InvalidValue("min_calls", min_calls, "at least 1 call")
        if window_s <= 0:
            raise InvalidValue("window_s", window_s, "a positive number of seconds")
        self.ratio = ratio
        self.min_calls = min_calls
        self.window_s = window_s
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failures = 0

    def record(self, failed: bool, now: float) -> bool:
        self._outcomes.append((now, failed))
        self._failures += failed
        while now - self._outcomes[0][0] > self.window_s:
            self._failures -= self._outcomes.popleft()[1]
        calls = len(self._outcomes)
        return calls >= self.min_calls and self._failures >= self.ratio * calls

    def reset(self) -> None:
        self._outcomes.clear()
        self._failures = 0


class CircuitBreaker:
    """Ask `allow()` before a call; report `success()` or `failure()` after it.

    Thread-safe: many callers asking at once while open or half-open get at most one
    True between them. `clock` is injectable so tests never sleep.
    """

    def __init__(
        self,
        rule: TripRule | None = None,
        *,
        cooldown_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cooldown_s <= 0:
            raise InvalidValue("cooldown_s", cooldown_s, "a positive number of seconds")
        self.rule: TripRule = rule if rule is not None else ConsecutiveFailures()
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._since = 0.0  # when the state (or the probe) last began
        self.opened = 0  # how many times it opened

    @property
    def state(self) -> BreakerState:
        return self._state

    def allow(self) -> bool:
        """May a call go now? Open: no, until the cool-down has passed, then yes for
        exactly one caller (the probe). Half-open: no, while the probe is out."""
        if self._state is BreakerState.CLOSED:  # the common case takes no lock
            return True
        with self._lock:
            return self._admit()

    def _admit(self) -> bool:
        if self._state is BreakerState.CLOSED:  # closed while this caller waited
            return True
        now = self._clock()
        if now - self._since < self.cooldown_s:
            return False
        self._fire(BreakerEvent.PROBE, now)
        return True

    def success(self) -> None:
        self._outcome(failed=False)

    def failure(self) -> None:
        self._outcome(failed=True)

    def _outcome(self, failed: bool) -> None:
        with self._lock:
            now = self._clock()
            if self._state is BreakerState.CLOSED and self.rule.record(failed, now):
                event = BreakerEvent.TRIP
            else:
                event = BreakerEvent.FAILURE if failed else BreakerEvent.SUCCESS
            self._fire(event, now)

    def _fire(self, event: BreakerEvent, now: float) -> None:
        old = self._state
        new = TRANSITIONS[(old, event)]
        if new is not old or event is BreakerEvent.PROBE:
            self._since = now
        if new is not old:
            self.rule.reset()
            if new is BreakerState.OPEN:
                self.opened += 1
            self._state = new
