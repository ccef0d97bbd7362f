from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from wedsync_perf.loadgen.stats import EndpointStats, LoadStats
from wedsync_perf.priorities import PriorityClass


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=1e-4, max_value=30.0), min_size=1, max_size=500))
def test_quantiles_are_within_one_percent(latencies: list[float]) -> None:
    stats = EndpointStats("GET /x", PriorityClass.STANDARD)
    for value in latencies:
        stats.record(value, 200, ok=True)
    ordered = sorted(latencies)
    for q in (0.5, 0.95, 0.99):
        # DDSketch's rank convention: the value at rank floor(q * (n - 1)).
        exact = ordered[math.floor(q * (len(ordered) - 1))]
        got = stats.quantile_ms(q)
        assert got is not None
        assert abs(got / 1000 - exact) <= 0.0101 * exact


def test_by_class_merges_endpoints() -> None:
    stats = LoadStats()
    a = stats.endpoint("GET /a", PriorityClass.CRITICAL)
    b = stats.endpoint("GET /b", PriorityClass.CRITICAL)
    c = stats.endpoint("GET /c", PriorityClass.BULK)
    for _ in range(3):
        a.record(0.01, 200, ok=True)
    b.record(0.02, 500, ok=False)
    c.record(0.5, 201, ok=True)
    merged = stats.by_class()
    assert merged[PriorityClass.CRITICAL].count == 4
    assert merged[PriorityClass.CRITICAL].errors == 1
    assert merged[PriorityClass.CRITICAL].statuses == {200: 3, 500: 1}
    assert merged[PriorityClass.BULK].count == 1
