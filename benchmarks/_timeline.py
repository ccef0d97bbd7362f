"""Answers by the second they completed: what `bench-faults` and `bench-soak` plot.

`failed` counts no answer (status 0: none within the generator's timeout, or a broken
connection) and every 5xx but 503; a 503 or 429 is a refusal a client can act on (it
carries `Retry-After`, which the test suite checks), and a 4xx is the app's answer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from wedsync_perf.loadgen.stats import EndpointStats, LoadStats
from wedsync_perf.priorities import PriorityClass

REFUSALS = frozenset({429, 503})


@dataclass
class Timeline:
    """Answers by completion second: statuses and latencies."""

    started: float = field(default_factory=time.monotonic)
    statuses: dict[int, dict[int, int]] = field(default_factory=dict)
    latencies: dict[int, list[float]] = field(default_factory=dict)

    def add(self, latency_s: float, status: int) -> None:
        second = int(time.monotonic() - self.started)
        by_status = self.statuses.setdefault(second, {})
        by_status[status] = by_status.get(status, 0) + 1
        self.latencies.setdefault(second, []).append(latency_s)

    def seconds(self, width: int = 1) -> list[dict[str, Any]]:
        """One row per `width` seconds: answers by status, failures, p95 (ms)."""
        rows = []
        for start in range(0, max(self.statuses, default=-1) + 1, width):
            statuses: dict[int, int] = {}
            latencies: list[float] = []
            for second in range(start, start + width):
                for status, n in self.statuses.get(second, {}).items():
                    statuses[status] = statuses.get(status, 0) + n
                latencies += self.latencies.get(second, [])
            latencies.sort()
            p95 = latencies[int(0.95 * (len(latencies) - 1))] * 1000 if latencies else None
            rows.append({
                "t": start,
                "statuses": {str(s): n for s, n in sorted(statuses.items())},
                "failed": sum(n for s, n in statuses.items() if failed(s)),
                "p95_ms": round(p95, 1) if p95 is not None else None,
            })  # fmt: skip
        return rows


def failed(status: int) -> bool:
    return status == 0 or (status >= 500 and status not in REFUSALS)


class TimedStats(LoadStats):
    """LoadStats whose every answer also lands in a per-second `Timeline`."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__()
        self.timeline = timeline

    def endpoint(self, name: str, priority: PriorityClass) -> EndpointStats:
        stats = self.endpoints.get(name)
        if stats is None:
            stats = self.endpoints[name] = _TimedEndpoint(name, priority)
            stats.timeline = self.timeline
        return stats


class _TimedEndpoint(EndpointStats):
    timeline: Timeline

    def record(self, latency_s: float, status: int, ok: bool) -> None:
        super().record(latency_s, status, ok)
        self.timeline.add(latency_s, status)
