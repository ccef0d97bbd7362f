from __future__ import annotations

import pytest

from wedsync_perf.monitoring.recorder import OVERFLOW_ROUTE, Recorder
from wedsync_perf.monitoring.series import SeriesKey, SeriesStats


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_windows_rotate_on_wall_clock_boundaries() -> None:
    clock = Clock(1_000_005.0)
    rec = Recorder(window_s=10, retention_s=60, clock=clock)
    rec.record("/a", "GET", 200, "standard", 0.010)
    clock.now = 1_000_012.0
    rec.record("/a", "GET", 200, "standard", 0.020)
    windows = rec.windows()
    assert [w.start for w in windows] == [1_000_000.0, 1_000_010.0]
    clock.now += 100  # past retention: the old windows fall out
    rec.record("/a", "GET", 200, "standard", 0.030)
    assert all(w.start > 1_000_010.0 for w in rec.windows())
    totals = rec.totals()
    assert totals[SeriesKey("/a", "GET", "2xx", "standard")].count == 3


def test_view_merges_recent_windows_only() -> None:
    clock = Clock(1_000_000.0)
    rec = Recorder(window_s=10, clock=clock)
    rec.record("/a", "GET", 200, "standard", 0.5)
    clock.now += 120
    for _ in range(3):
        rec.record("/a", "GET", 200, "standard", 0.05)
    recent = rec.view(60)
    assert recent[SeriesKey("/a", "GET", "2xx", "standard")].count == 3


def test_thresholds_are_counted_exactly() -> None:
    rec = Recorder(slo_thresholds_s=(0.1, 0.2, 0.123), clock=Clock())
    for d in (0.0999, 0.1, 0.1001, 0.123, 0.2, 0.2001):
        rec.record("/a", "GET", 200, "critical", d)
    stats = rec.totals()[SeriesKey("/a", "GET", "2xx", "critical")]
    assert stats.count_at_most(0.1) == 2
    assert stats.count_at_most(0.123) == 4
    assert stats.count_at_most(0.2) == 5
    with pytest.raises(ValueError, match="edge"):
        stats.count_at_most(0.11)


def test_series_cap_folds_into_overflow() -> None:
    rec = Recorder(max_series=3, clock=Clock())
    for i in range(50):
        rec.record(f"/r{i}", "GET", 200, "bulk", 0.01)
    totals = rec.totals()
    assert len(totals) == 4
    overflow = totals[SeriesKey(OVERFLOW_ROUTE, "GET", "2xx", "bulk")]
    assert overflow.count == 47
    assert rec.dropped_series == 47


def test_unknown_methods_and_statuses_collapse() -> None:
    rec = Recorder(clock=Clock())
    rec.record("/a", "BREW", 418, "standard", 0.01)
    rec.record("/a", "GET", 999, "standard", 0.01)
    assert set(rec.totals()) == {
        SeriesKey("/a", "OTHER", "4xx", "standard"),
        SeriesKey("/a", "GET", "other", "standard"),
    }


def test_series_bytes_round_trip_and_validation() -> None:
    rec = Recorder(clock=Clock())
    for d in (0.01, 0.02, 0.3):
        rec.record("/a", "GET", 200, "standard", d, 100, True, 0.001)
    stats = next(iter(rec.totals().values()))
    again = SeriesStats.from_series_bytes(stats.series_bytes(), rec.edges)
    assert again.count == 3
    assert again.cache_hits == 3
    assert again.bytes_sent == 300
    assert again.buckets == stats.buckets
    assert again.ttfb is not None
    assert again.ttfb.count == 3
    with pytest.raises(ValueError, match="edges"):
        SeriesStats.from_series_bytes(stats.series_bytes(), rec.edges[:-1])
