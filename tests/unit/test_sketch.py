from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wedsync_perf.monitoring.sketch import MAX_BINS, RELATIVE_ACCURACY, LatencySketch

latencies = st.lists(st.floats(min_value=2e-6, max_value=100.0), min_size=1, max_size=400)


def exact(values: list[float], q: float) -> float:
    return sorted(values)[math.floor(q * (len(values) - 1))]


@settings(max_examples=80, deadline=None)
@given(latencies, st.sampled_from([0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]))
def test_quantiles_within_relative_accuracy(values: list[float], q: float) -> None:
    sketch = LatencySketch()
    for v in values:
        sketch.add(v)
    got = sketch.quantile(q)
    assert got is not None
    want = exact(values, q)
    assert abs(got - want) <= RELATIVE_ACCURACY * want * (1 + 1e-9)


@settings(max_examples=60, deadline=None)
@given(latencies, latencies)
def test_merge_is_exact(a: list[float], b: list[float]) -> None:
    left, right, together = LatencySketch(), LatencySketch(), LatencySketch()
    for v in a:
        left.add(v)
        together.add(v)
    for v in b:
        right.add(v)
        together.add(v)
    left.merge(right)
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        assert left.quantile(q) == together.quantile(q)
    assert left.count == together.count
    assert left.sum == pytest.approx(together.sum)


@settings(max_examples=40, deadline=None)
@given(latencies)
def test_bytes_round_trip(values: list[float]) -> None:
    sketch = LatencySketch()
    for v in values:
        sketch.add(v)
    again = LatencySketch.from_bytes(sketch.to_bytes())
    assert again.count == sketch.count
    assert [again.quantile(q) for q in (0.1, 0.5, 0.99)] == [
        sketch.quantile(q) for q in (0.1, 0.5, 0.99)
    ]


def test_memory_is_bounded_even_over_a_huge_range() -> None:
    sketch = LatencySketch()
    rng = random.Random(5)
    values = [10 ** rng.uniform(-6, 6) for _ in range(20_000)]  # 1 µs to 11 days
    for v in values:
        sketch.add(v)
    assert sketch.bins <= MAX_BINS
    assert len(sketch.to_bytes()) <= 4 * MAX_BINS + 64
    # High quantiles keep their accuracy; only the lowest bins were folded.
    for q in (0.5, 0.99):
        assert sketch.quantile(q) == pytest.approx(exact(values, q), rel=RELATIVE_ACCURACY)


@pytest.mark.parametrize(
    "blob", [b"", b"\x02" + bytes(46), LatencySketch().to_bytes() + b"\x00\x00\x00"]
)
def test_malformed_bytes_are_rejected(blob: bytes) -> None:
    with pytest.raises(ValueError, match="sketch"):
        LatencySketch.from_bytes(blob)


def test_empty_and_invalid_quantiles() -> None:
    sketch = LatencySketch()
    assert sketch.quantile(0.5) is None
    with pytest.raises(ValueError, match="quantile"):
        sketch.quantile(1.5)


def test_zero_and_tiny_values_report_zero() -> None:
    sketch = LatencySketch()
    for v in (0.0, 1e-9, 0.5):
        sketch.add(v)
    assert sketch.quantile(0.0) == 0.0
    assert sketch.quantile(1.0) == pytest.approx(0.5, rel=RELATIVE_ACCURACY)


def test_values_up_to_a_microsecond_report_the_smallest_seen() -> None:
    sketch = LatencySketch()
    for v in (8e-7, 5e-7, 9e-7):
        sketch.add(v)
    assert sketch.quantile(0.0) == sketch.quantile(1.0) == 5e-7  # not 0, not 9e-7
    sketch.add(-1.0)
    assert sketch.quantile(0.0) == 0.0
    assert sketch.min == -1.0
