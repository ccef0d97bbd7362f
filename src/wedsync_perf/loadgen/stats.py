"""Client-side measurements of a load run: per-endpoint DDSketch (1 % relative error)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ddsketch import DDSketch

from wedsync_perf.monitoring.regression import BenchRun
from wedsync_perf.priorities import PriorityClass

__all__ = ["EndpointStats", "LoadStats"]

RELATIVE_ACCURACY = 0.01
RESERVOIR = 2000  # latencies kept per endpoint for run-to-run comparisons


@dataclass
class EndpointStats:
    name: str
    priority: PriorityClass
    sketch: DDSketch = field(default_factory=lambda: DDSketch(RELATIVE_ACCURACY))
    count: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    # A uniform sample of the latencies (Algorithm R), for significance tests between
    # runs (`wedsync-perf regress`); seeded by the endpoint name: reproducible.
    reservoir: list[float] = field(default_factory=list)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.name)

    def record(self, latency_s: float, status: int, ok: bool) -> None:
        self.sketch.add(latency_s)
        self.count += 1
        if len(self.reservoir) < RESERVOIR:
            self.reservoir.append(latency_s)
        else:
            slot = self._rng.randrange(self.count)
            if slot < RESERVOIR:
                self.reservoir[slot] = latency_s
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

    def bench_run(self, name: str = "", meta: dict[str, Any] | None = None) -> BenchRun:
        """The run in the `wedsync-perf-bench/1` format `wedsync-perf regress` reads:
        each endpoint's latency sample, in ms."""
        routes = {
            label: [v * 1000 for v in stats.reservoir]
            for label, stats in sorted(self.endpoints.items())
            if stats.reservoir
        }
        return BenchRun(routes, name, dict(meta or {}))

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
