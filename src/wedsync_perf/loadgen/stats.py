"""Client-side measurements of a load run: per-endpoint DDSketch (1 % relative error)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from ddsketch import DDSketch

from wedsync_perf.priorities import PriorityClass

__all__ = ["EndpointStats", "LoadStats"]

RELATIVE_ACCURACY = 0.01


@dataclass
class EndpointStats:
    name: str
    priority: PriorityClass
    sketch: DDSketch = field(default_factory=lambda: DDSketch(RELATIVE_ACCURACY))
    count: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def record(self, latency_s: float, status: int, ok: bool) -> None:
        self.sketch.add(latency_s)
        self.count += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if not ok:
            self.errors += 1

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
