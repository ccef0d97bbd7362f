"""`LatencySketch`: a relative-error, exactly mergeable quantile sketch (DDSketch).

Same mapping as DDSketch (Masson, Rim & Lee, VLDB 2019): a value v > 0 falls in bin
k = ceil(log_γ v) with γ = (1 + α) / (1 - α), and bin k reports γ^k · (1 - α), which is
within α of every value in the bin. Quantiles are therefore within α (1 %) relative
error, and two sketches merge by adding bin counts — the merged sketch is exactly the
sketch of all the values, so a fleet p99 is as accurate as one process's.

Why not the `ddsketch` package: it keeps counts in a Python list of float objects (a pointer
and a boxed float per bin); this keeps them in a dense `array('I')` (4 bytes a bin)
capped at `MAX_BINS`, so a sketch's bins never exceed 4 KiB, and it serialises to a compact byte string for the
fleet view. The benchmark `make bench-accuracy` checks both against exact quantiles.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Iterable
from operator import add as _add

from wedsync_perf.errors import CorruptData, InvalidValue

__all__ = ["MAX_BINS", "RELATIVE_ACCURACY", "LatencySketch"]

RELATIVE_ACCURACY = 0.01
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_MULTIPLIER = 1 / math.log(_GAMMA)
MIN_VALUE = 1e-6
"""Values at or below this (1 µs) share one bin, which has no log scale to report from:
a quantile that lands in it reports the smallest value seen (0 if that was negative) —
within 1 µs of the true one, though not within 1 % of it."""
MAX_BINS = 1024
"""Bins kept per sketch: 1024 × 4 bytes = 4 KiB at most. At 1 % accuracy that spans
1 µs to over 100 s; beyond it the lowest bins collapse (low quantiles lose accuracy
first, never p50 and above)."""

_log = math.log
_ceil = math.ceil
_HEADER = struct.Struct("<BQQdddiH")
_VERSION = 1


def _padded(counts: array[int], before: int, after: int) -> array[int]:
    if not before and not after:
        return counts
    return array("I", bytes(4 * before)) + counts + array("I", bytes(4 * after))


if array("I").itemsize != 4:  # pragma: no cover - every platform CPython supports today
    raise ImportError("wedsync_perf.monitoring.sketch needs a 4-byte array('I')")


class LatencySketch:
    """Quantiles of positive values (seconds) within 1 % relative error; O(1) insert."""

    __slots__ = ("_counts", "_offset", "_zero", "count", "max", "min", "sum")

    def __init__(self) -> None:
        self._counts = array("I")
        self._offset = 0  # bin key of _counts[0]
        self._zero = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        """Record one value (seconds). A negative one counts in the ≤ 1 µs bin, so
        quantiles see it as 0; `sum` and `min` keep it as given."""
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if value <= MIN_VALUE:
            self._zero += 1
            return
        index = _ceil(_log(value) * _MULTIPLIER) - self._offset
        counts = self._counts
        if 0 <= index < len(counts):
            counts[index] += 1
        else:
            self._add_outside(index + self._offset, 1)

    def _add_outside(self, key: int, n: int) -> None:
        counts = self._counts
        if not counts:
            self._offset = key
            counts.append(n)
            return
        low, high = self._offset, self._offset + len(counts) - 1
        new_low, new_high = min(low, key), max(high, key)
        if new_high - new_low + 1 > MAX_BINS:
            # Keep the highest MAX_BINS keys; fold everything below into the lowest one.
            new_low = new_high - MAX_BINS + 1
        grown = array("I", bytes(4 * (new_high - new_low + 1)))
        for i, c in enumerate(counts):
            if c:
                grown[max(low + i, new_low) - new_low] += c
        grown[max(key, new_low) - new_low] += n
        self._counts = grown
        self._offset = new_low

    def merge(self, other: LatencySketch) -> None:
        """Add `other`'s values to this sketch (exact: as if recorded here)."""
        if other.count == 0:
            return
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self._zero += other._zero
        if not other._counts:
            return
        if not self._counts:
            self._counts = array("I", other._counts)
            self._offset = other._offset
            return
        low = min(self._offset, other._offset)
        high = max(self._offset + len(self._counts), other._offset + len(other._counts))
        if high - low > MAX_BINS:
            for i, c in enumerate(other._counts):  # rare: the ranges need collapsing
                if c:
                    self._add_outside(other._offset + i, c)
            return
        # Pad both to the common range and add element-wise with C-level builtins: a
        # 1,000-bin merge costs microseconds, not a Python loop per bin.
        mine = _padded(self._counts, self._offset - low, high - self._offset - len(self._counts))
        theirs = _padded(
            other._counts, other._offset - low, high - other._offset - len(other._counts)
        )
        self._counts = array("I", map(_add, mine, theirs))
        self._offset = low

    def quantile(self, q: float) -> float | None:
        """The value at quantile `q` (0..1), None when empty. Uses the rank q·(n−1)."""
        if not 0 <= q <= 1:
            raise InvalidValue("q", q, "a quantile within [0, 1]")
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        seen = self._zero
        if rank < seen:
            return max(0.0, self.min)
        for i, c in enumerate(self._counts):
            seen += c
            if seen > rank:
                value = _GAMMA ** (self._offset + i) * (1 - RELATIVE_ACCURACY)
                return min(max(value, self.min), self.max)
        return self.max

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        return [self.quantile(q) for q in qs]

    @property
    def bins(self) -> int:
        """Bins allocated (memory is 4 bytes each plus a fixed ~120-byte object)."""
        return len(self._counts)

    def to_bytes(self) -> bytes:
        """Compact little-endian form: a 47-byte header and 4 bytes per bin."""
        header = _HEADER.pack(
            _VERSION,
            self._zero,
            self.count,
            self.sum,
            self.min if self.count else 0.0,
            self.max if self.count else 0.0,
            self._offset,
            len(self._counts),
        )
        counts = self._counts
        if counts.itemsize == 4 and array("I", [1]).tobytes() == b"\x01\x00\x00\x00":
            return header + counts.tobytes()
        swapped = array("I", counts)  # pragma: no cover - big-endian hosts
        swapped.byteswap()  # pragma: no cover
        return header + swapped.tobytes()  # pragma: no cover

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> LatencySketch:
        """Inverse of `to_bytes`; raises `CorruptData` (a ValueError) on malformed input."""
        view = memoryview(data)
        if len(view) < _HEADER.size:
            raise CorruptData(
                f"sketch bytes too short: {len(view)}, the header alone is {_HEADER.size}"
            )
        version, zero, count, total, low, high, offset, nbins = _HEADER.unpack_from(view)
        if version != _VERSION:
            raise CorruptData(f"sketch format version {version}; this version reads {_VERSION}")
        body = view[_HEADER.size :]
        if len(body) != 4 * nbins or nbins > MAX_BINS:
            raise CorruptData(
                f"sketch bytes do not match their header: {len(body)} bytes for {nbins} bins"
                f" (at most {MAX_BINS})"
            )
        sketch = cls()
        sketch._zero = zero
        sketch.count = count
        sketch.sum = total
        sketch.min = low if count else math.inf
        sketch.max = high if count else -math.inf
        sketch._offset = offset
        counts = array("I")
        counts.frombytes(body.tobytes())
        if array("I", [1]).tobytes() != b"\x01\x00\x00\x00":  # pragma: no cover
            counts.byteswap()
        if sum(counts) + zero != count:
            raise CorruptData(
                f"sketch bins add up to {sum(counts) + zero}, its header says {count}"
            )
        sketch._counts = counts
        return sketch

    def copy(self) -> LatencySketch:
        clone = LatencySketch()
        clone._counts = array("I", self._counts)
        clone._offset = self._offset
        clone._zero = self._zero
        clone.count = self.count
        clone.sum = self.sum
        clone.min = self.min
        clone.max = self.max
        return clone
