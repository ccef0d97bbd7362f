"""Read-side summaries of recorded series: per route and per priority class, with
rates, peaks, percentiles and exact fractions under each SLO threshold."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from wedsync_perf.monitoring.recorder import Window, merge_windows
from wedsync_perf.monitoring.series import SeriesStats

__all__ = ["ClassSummary", "RouteSummary", "Summary", "summarize"]

QUANTILES = (0.5, 0.95, 0.99)
_K = TypeVar("_K")


@dataclass(frozen=True)
class RouteSummary:
    route: str
    method: str
    priority: str
    count: int
    errors: int  # 5xx (including exceptions)
    client_errors: int  # 4xx (including client disconnects)
    rps: float
    peak_rps: float  # busiest window
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    under_ms: dict[str, float]  # exact fraction of requests ≤ each SLO threshold
    cache_hit_ratio: float


@dataclass(frozen=True)
class ClassSummary:
    priority: str
    count: int
    errors: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    under_ms: dict[str, float]


@dataclass(frozen=True)
class Summary:
    span_s: float
    routes: list[RouteSummary] = field(default_factory=list)
    classes: list[ClassSummary] = field(default_factory=list)
    in_flight: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


def _fractions(stats: SeriesStats, thresholds: Sequence[float]) -> dict[str, float]:
    if stats.count == 0:
        return {}
    return {f"{t * 1000:g}": stats.count_at_most(t) / stats.count for t in thresholds}


def _merge_into(
    target: dict[_K, SeriesStats], group: _K, stats: SeriesStats, edges: Sequence[float]
) -> None:
    merged = target.get(group)
    if merged is None:
        merged = target[group] = SeriesStats(edges)
    merged.merge(stats)


def summarize(
    windows: Iterable[Window],
    edges: Sequence[float],
    thresholds: Sequence[float],
    span_s: float,
    window_s: float,
    in_flight: int = 0,
    now: float | None = None,
) -> Summary:
    """Summaries over `windows`, whose total span is `span_s` seconds. With `now`, the
    still-open window's peak rate is taken over the seconds it has actually run."""
    windows = list(windows)
    span = max(span_s, 1e-9)
    per_route: dict[tuple[str, str, str], SeriesStats] = {}
    per_class: dict[str, SeriesStats] = {}
    errors: dict[tuple[str, str, str], list[int]] = {}
    peaks: dict[tuple[str, str, str], float] = {}
    for window in windows:
        seconds = window_s if now is None else min(window_s, max(now - window.start, 1.0))
        in_window: dict[tuple[str, str, str], int] = {}
        for key, stats in window.series.items():
            rkey = (key.route, key.method, key.priority)
            in_window[rkey] = in_window.get(rkey, 0) + stats.count
        for rkey, n in in_window.items():
            peaks[rkey] = max(peaks.get(rkey, 0.0), n / seconds)
    for key, stats in merge_windows(windows, edges).items():
        rkey = (key.route, key.method, key.priority)
        _merge_into(per_route, rkey, stats, edges)
        _merge_into(per_class, key.priority, stats, edges)
        counts = errors.setdefault(rkey, [0, 0])
        if key.status_class == "5xx":
            counts[0] += stats.count
        elif key.status_class == "4xx":
            counts[1] += stats.count
    routes = [
        RouteSummary(
            route=route,
            method=method,
            priority=priority,
            count=stats.count,
            errors=errors[(route, method, priority)][0],
            client_errors=errors[(route, method, priority)][1],
            rps=stats.count / span,
            peak_rps=peaks.get((route, method, priority), 0.0),
            p50_ms=_ms(stats.quantile(0.5)),
            p95_ms=_ms(stats.quantile(0.95)),
            p99_ms=_ms(stats.quantile(0.99)),
            under_ms=_fractions(stats, thresholds),
            cache_hit_ratio=stats.cache_hits / stats.count if stats.count else 0.0,
        )
        for (route, method, priority), stats in per_route.items()
    ]
    class_errors: dict[str, int] = {}
    for (_, _, priority), (five, _) in errors.items():
        class_errors[priority] = class_errors.get(priority, 0) + five
    classes = [
        ClassSummary(
            priority=priority,
            count=stats.count,
            errors=class_errors.get(priority, 0),
            rps=stats.count / span,
            p50_ms=_ms(stats.quantile(0.5)),
            p95_ms=_ms(stats.quantile(0.95)),
            p99_ms=_ms(stats.quantile(0.99)),
            under_ms=_fractions(stats, thresholds),
        )
        for priority, stats in per_class.items()
    ]
    rank = {"critical": 0, "standard": 1, "bulk": 2}
    routes.sort(key=lambda r: (rank.get(r.priority, 3), r.route, r.method))
    classes.sort(key=lambda c: rank.get(c.priority, 3))
    return Summary(span_s=span_s, routes=routes, classes=classes, in_flight=in_flight)
