"""What is recorded per series (route template × method × status class × priority):
a latency sketch plus exact counters and exact histogram bucket counts."""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Sequence
from typing import NamedTuple

from wedsync_perf.errors import CorruptData, InvalidValue
from wedsync_perf.monitoring.sketch import (
    _MULTIPLIER,
    MIN_VALUE,
    LatencySketch,
    _ceil,
    _log,
)

__all__ = ["SeriesKey", "SeriesStats", "status_class"]

_STATUS_CLASSES = ("other", "1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    """'2xx' … '5xx'; anything outside 100–599 is 'other'."""
    hundreds = status // 100
    return _STATUS_CLASSES[hundreds] if 1 <= hundreds <= 5 else "other"


class SeriesKey(NamedTuple):
    """The labels of one series. Only templates and closed sets of values: never a raw
    path, query string, ID, header or body."""

    route: str
    method: str
    status_class: str
    priority: str


_COUNTERS = struct.Struct("<QQIH")


class SeriesStats(LatencySketch):
    """A latency sketch of one series in one window (or cumulatively), plus exact counts.

    `buckets[i]` counts durations ≤ `edges[i]` and > `edges[i-1]`; the last slot counts
    the rest. Counting is exact, so "fraction under 100 ms" is exact whenever 100 ms is
    an edge — the recorder makes every SLO threshold one. `observe` inlines the sketch
    insert: it is the one function every request runs.
    """

    __slots__ = ("buckets", "bytes_sent", "cache_hits", "edges", "ttfb")

    def __init__(self, edges: Sequence[float]) -> None:
        super().__init__()
        self.edges = edges
        self.ttfb: LatencySketch | None = None  # only for streamed responses
        self.bytes_sent = 0
        self.cache_hits = 0
        self.buckets = [0] * (len(edges) + 1)

    def observe(self, duration: float, size: int, cache_hit: bool, ttfb: float | None) -> None:
        self.count += 1
        self.sum += duration
        if duration < self.min:
            self.min = duration
        if duration > self.max:
            self.max = duration
        if duration <= MIN_VALUE:
            self._zero += 1
        else:
            index = _ceil(_log(duration) * _MULTIPLIER) - self._offset
            counts = self._counts
            if 0 <= index < len(counts):
                counts[index] += 1
            else:
                self._add_outside(index + self._offset, 1)
        self.buckets[bisect_left(self.edges, duration)] += 1
        self.bytes_sent += size
        if cache_hit:
            self.cache_hits += 1
        if ttfb is not None:
            if self.ttfb is None:
                self.ttfb = LatencySketch()
            self.ttfb.add(ttfb)

    def merge(self, other: LatencySketch) -> None:
        super().merge(other)
        if not isinstance(other, SeriesStats):
            return
        if other.edges != self.edges:
            raise InvalidValue(
                "other.edges", other.edges, f"this series' bucket edges {self.edges}"
            )
        self.bytes_sent += other.bytes_sent
        self.cache_hits += other.cache_hits
        for i, n in enumerate(other.buckets):
            self.buckets[i] += n
        if other.ttfb is not None:
            if self.ttfb is None:
                self.ttfb = LatencySketch()
            self.ttfb.merge(other.ttfb)

    def count_at_most(self, threshold: float) -> int:
        """Exact number of durations ≤ `threshold`; `threshold` must be an edge."""
        if threshold not in self.edges:
            raise InvalidValue("threshold", threshold, f"one of the bucket edges {self.edges}")
        return sum(self.buckets[: list(self.edges).index(threshold) + 1])

    def series_bytes(self) -> bytes:
        """Counters, buckets, latency sketch and (if any) time-to-first-byte sketch."""
        sketch = self.to_bytes()
        ttfb = self.ttfb.to_bytes() if self.ttfb is not None else b""
        head = _COUNTERS.pack(self.bytes_sent, self.cache_hits, len(sketch), len(self.buckets))
        return head + struct.pack(f"<{len(self.buckets)}Q", *self.buckets) + sketch + ttfb

    @classmethod
    def from_series_bytes(cls, data: bytes, edges: Sequence[float]) -> SeriesStats:
        """Inverse of `series_bytes`; raises `CorruptData` (a ValueError) on malformed input."""
        view = memoryview(data)
        if len(view) < _COUNTERS.size:
            raise CorruptData(
                f"series bytes too short: {len(view)}, the header alone is {_COUNTERS.size}"
            )
        sent, hits, sketch_len, nbuckets = _COUNTERS.unpack_from(view)
        if nbuckets != len(edges) + 1:
            raise CorruptData(
                f"series bytes hold {nbuckets} buckets, {len(edges)} edges make"
                f" {len(edges) + 1}: they were recorded with other bucket edges"
            )
        at = _COUNTERS.size
        buckets = list(struct.unpack_from(f"<{nbuckets}Q", view, at))
        at += 8 * nbuckets
        sketch = LatencySketch.from_bytes(view[at : at + sketch_len])
        at += sketch_len
        if sum(buckets) != sketch.count:
            raise CorruptData(
                f"series buckets count {sum(buckets)} durations, its sketch {sketch.count}"
            )
        stats = cls(edges)
        stats.merge(sketch)
        stats.bytes_sent, stats.cache_hits, stats.buckets = sent, hits, buckets
        if at < len(view):
            stats.ttfb = LatencySketch.from_bytes(view[at:])
        return stats
