"""A circuit breaker around the cache's Redis calls: when Redis is down or slow,
requests stop waiting for it and go straight to the loader; it is retried by itself.

States and transitions in one table (closed → open after `threshold` consecutive
failures; open → half-open after `cooldown_s`; half-open → closed on a success, back to
open on a failure).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_ON_SUCCESS = {
    BreakerState.CLOSED: BreakerState.CLOSED,
    BreakerState.HALF_OPEN: BreakerState.CLOSED,
    BreakerState.OPEN: BreakerState.OPEN,
}


class CircuitBreaker:
    def __init__(
        self,
        threshold: int = 5,
        cooldown_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self.opened = 0  # how many times it opened

    def allow(self) -> bool:
        """May a call go to Redis now? In half-open, one probe at a time."""
        if self.state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.cooldown_s:
                return False
            self.state = BreakerState.HALF_OPEN
            return True
        return True

    def success(self) -> None:
        self._failures = 0
        self.state = _ON_SUCCESS[self.state]

    def failure(self) -> None:
        self._failures += 1
        if self.state is BreakerState.HALF_OPEN or self._failures >= self.threshold:
            if self.state is not BreakerState.OPEN:
                self.opened += 1
            self.state = BreakerState.OPEN
            self._opened_at = self._clock()
