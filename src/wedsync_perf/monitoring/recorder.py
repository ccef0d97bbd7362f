"""The in-process store of request measurements: rolling time windows of series.

Windows are aligned to wall-clock multiples of `window_s` so that every process and
instance cuts time the same way and their windows merge one to one in the fleet view.
The request path does one clock read, one dict lookup and a few integer updates; every
aggregation (rates, percentiles, exports) happens when someone asks.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from wedsync_perf.errors import InvalidValue
from wedsync_perf.monitoring.series import SeriesKey, SeriesStats, status_class

__all__ = [
    "DEFAULT_EDGES",
    "OVERFLOW_ROUTE",
    "UNMATCHED_ROUTE",
    "Recorder",
    "Window",
]

UNMATCHED_ROUTE = "__unmatched__"
"""Every request no route matched (404 scans, bots) shares this one series."""
OVERFLOW_ROUTE = "__overflow__"
"""Series beyond `max_series` are folded here instead of growing memory."""
DEFAULT_EDGES = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Histogram edges (s): dense around the wedding-day (100 ms) and normal (200 ms) SLOs."""
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass
class Window:
    """One window: its wall-clock start and the series recorded in it."""

    start: float
    series: dict[SeriesKey, SeriesStats]


class Recorder:
    """Rolling windows of per-series stats, plus cumulative totals for counters.

    Thread-safety: meant for one event loop; `snapshot` methods may run in another
    thread (a Prometheus scrape) and take a lock only around window rotation.
    """

    def __init__(
        self,
        *,
        window_s: float = 10.0,
        retention_s: float = 3600.0,
        slo_thresholds_s: Sequence[float] = (0.1, 0.2),
        edges_s: Sequence[float] = DEFAULT_EDGES,
        max_series: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_s <= 0:
            raise InvalidValue("window_s", window_s, "a positive number of seconds")
        if retention_s < window_s:
            raise InvalidValue("retention_s", retention_s, f"at least window_s ({window_s:g} s)")
        if max_series < 1:
            raise InvalidValue("max_series", max_series, "at least 1 series")
        self.window_s = window_s
        self.retention_s = retention_s
        self.slo_thresholds_s = tuple(sorted(slo_thresholds_s))
        self.edges = tuple(sorted(set(edges_s) | set(self.slo_thresholds_s)))
        self.max_series = max_series
        self._clock = clock
        self._lock = threading.Lock()
        self._known: set[SeriesKey] = set()
        self._canonical: dict[tuple[str, str, int, str], SeriesKey] = {}
        self._closed: deque[Window] = deque(maxlen=max(1, int(retention_s // window_s)))
        self._totals: dict[SeriesKey, SeriesStats] = {}
        start = self._align(clock())
        self._current = Window(start, {})
        self._current_end = start + window_s
        self.in_flight = 0  # requests inside the middleware right now
        self.dropped_series = 0  # records folded into the overflow series

    def _align(self, now: float) -> float:
        return now - (now % self.window_s)

    # -- the request path ---------------------------------------------------------

    def record(
        self,
        route: str,
        method: str,
        status: int,
        priority: str,
        duration_s: float,
        size: int = 0,
        cache_hit: bool = False,
        ttfb_s: float | None = None,
    ) -> None:
        """Record one finished request.

        `route` must be a template (never a raw path) and `priority` a `PriorityClass`
        value; plain strings keep enum hashing off this path.
        """
        now = self._clock()
        if now >= self._current_end:
            self._rotate(now)
        raw = (route, method, status, priority)
        key = self._canonical.get(raw)
        if key is None:
            key = self._admit(raw)
        series = self._current.series
        stats = series.get(key)
        if stats is None:
            stats = series[key] = SeriesStats(self.edges)
        stats.observe(duration_s, size, cache_hit, ttfb_s)

    def _admit(self, raw: tuple[str, str, int, str]) -> SeriesKey:
        """Normalise labels once per distinct raw combination and apply the series cap."""
        route, method, status, priority = raw
        key = SeriesKey(
            route, method if method in KNOWN_METHODS else "OTHER", status_class(status), priority
        )
        if key not in self._known:
            if len(self._known) < self.max_series:
                self._known.add(key)
            else:
                self.dropped_series += 1
                key = key._replace(route=OVERFLOW_ROUTE)
                # Not cached: a later cap raise or reset must be able to admit it.
                return key
        if len(self._canonical) < 8 * self.max_series:
            self._canonical[raw] = key
        return key

    def _rotate(self, now: float) -> None:
        with self._lock:
            if now < self._current_end:
                return
            closed = self._current
            if closed.series:
                self._closed.append(closed)
                for key, stats in closed.series.items():
                    total = self._totals.get(key)
                    if total is None:
                        total = self._totals[key] = SeriesStats(self.edges)
                    total.merge(stats)
            start = self._align(now)
            horizon = start - self.retention_s
            while self._closed and self._closed[0].start < horizon:
                self._closed.popleft()
            self._current = Window(start, {})
            self._current_end = start + self.window_s

    # -- reading ------------------------------------------------------------------

    def windows(self, since: float | None = None) -> list[Window]:
        """Closed windows (oldest first) plus the current one, starting at or after `since`."""
        self._rotate(self._clock())
        with self._lock:
            found = [*self._closed, self._current]
        return [w for w in found if since is None or w.start >= since]

    def view(self, last_s: float) -> dict[SeriesKey, SeriesStats]:
        """Series merged over the windows of the last `last_s` seconds."""
        since = self._align(self._clock()) - last_s + self.window_s
        return merge_windows(self.windows(since), self.edges)

    def totals(self) -> dict[SeriesKey, SeriesStats]:
        """Cumulative since start (monotonic counters, for Prometheus)."""
        self._rotate(self._clock())
        with self._lock:
            merged = {k: _copy(v) for k, v in self._totals.items()}
            current = list(self._current.series.items())
        for key, stats in current:
            target = merged.get(key)
            if target is None:
                merged[key] = _copy(stats)
            else:
                target.merge(stats)
        return merged

    def series_count(self) -> int:
        return len(self._known)


def _copy(stats: SeriesStats) -> SeriesStats:
    clone = SeriesStats(stats.edges)
    clone.merge(stats)
    return clone


def merge_windows(
    windows: Iterable[Window], edges: Sequence[float]
) -> dict[SeriesKey, SeriesStats]:
    merged: dict[SeriesKey, SeriesStats] = {}
    for window in windows:
        for key, stats in window.series.items():
            target = merged.get(key)
            if target is None:
                target = merged[key] = SeriesStats(edges)
            target.merge(stats)
    return merged
