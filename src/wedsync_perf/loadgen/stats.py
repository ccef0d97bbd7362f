"""Client-side measurements of a load run: per-endpoint DDSketch (1 % relative error)
plus a rolling request rate."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ddsketch import DDSketch

from wedsync_perf.priorities import PriorityClass

__all__ = ["EndpointStats", "LoadStats", "RateWindow"]

RELATIVE_ACCURACY = 0.01


class RateWindow:
    """Events per second over the last `seconds` whole seconds (a ring of 1 s buckets)."""

    def __init__(self, seconds: int = 5, clock: Callable[[], float] = time.monotonic) -> None:
        if seconds < 1:
            raise ValueError("seconds must be >= 1")
        self._seconds = seconds
        self._clock = clock
        self._buckets = [0] * (seconds + 1)
        self._stamps = [-1] * (seconds + 1)

    def add(self, n: int = 1) -> None:
        now = int(self._clock())
        i = now % len(self._buckets)
        if self._stamps[i] != now:
            self._stamps[i] = now
            self._buckets[i] = 0
        self._buckets[i] += n

    def rate(self) -> float:
        """Mean rate over the last complete seconds (the current one is excluded)."""
        now = int(self._clock())
        total = sum(
            count
            for count, stamp in zip(self._buckets, self._stamps, strict=True)
            if now - self._seconds <= stamp < now
        )
        return total / self._seconds


@dataclass
class EndpointStats:
    name: str
    priority: PriorityClass
    sketch: DDSketch = field(default_factory=lambda: DDSketch(RELATIVE_ACCURACY))
    count: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    window: RateWindow = field(default_factory=RateWindow)

    def record(self, latency_s: float, status: int, ok: bool) -> None:
        self.sketch.add(latency_s)
        self.count += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if not ok:
            self.errors += 1
        self.window.add()

    def quantile_ms(self, q: float) -> float | None:
        if self.count == 0:
            return None
        value = self.sketch.get_quantile_value(q)
        return None if value is None else float(value) * 1000.0


@dataclass
class LoadStats:
    """Everything one load run measured, keyed by endpoint label."""

    endpoints: dict[str, EndpointStats] = field(default_factory=dict)
    dropped: int = 0  # arrivals not sent because the in-flight cap was reached
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    def endpoint(self, name: str, priority: PriorityClass) -> EndpointStats:
        stats = self.endpoints.get(name)
        if stats is None:
            stats = self.endpoints[name] = EndpointStats(name, priority)
        return stats

    def by_class(self) -> dict[PriorityClass, EndpointStats]:
        """Merge endpoint sketches per class (DDSketch merges exactly)."""
        merged: dict[PriorityClass, EndpointStats] = {}
        for stats in self.endpoints.values():
            target = merged.get(stats.priority)
            if target is None:
                target = merged[stats.priority] = EndpointStats(
                    stats.priority.value, stats.priority
                )
            _merge_into(target, [stats])
        return merged

    def elapsed_s(self) -> float:
        end = self.finished_at if self.finished_at is not None else time.monotonic()
        return max(end - self.started_at, 1e-9)


def _merge_into(target: EndpointStats, sources: Iterable[EndpointStats]) -> None:
    for source in sources:
        if source.count:
            target.sketch.merge(source.sketch)
        target.count += source.count
        target.errors += source.errors
        for status, n in source.statuses.items():
            target.statuses[status] = target.statuses.get(status, 0) + n
