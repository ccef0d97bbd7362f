"""The Kubernetes Horizontal Pod Autoscaler's algorithm, as the reactive baseline and
the reactive half of our policy.

Follows `pkg/controller/podautoscaler` (replica_calculator.go, horizontal.go):

* per metric, usage ratio r = average per ready pod ÷ target; within the 0.1 tolerance
  nothing changes; else desired = ceil(r × ready pods). Pods without a sample (started,
  not yet ready) are *missing*: on a scale-up they count as using 0, on a scale-down as
  using the target, and a result that would reverse direction is dropped;
* several metrics: the largest recommendation;
* behaviour: stabilisation (scale-up: the smallest recommendation of the last window,
  0 s by default; scale-down: the largest of the last 300 s), then rate limits per
  policy over its period (scale-up: max(+100 %, +4 pods) per 15 s; scale-down: −100 %
  per 15 s), then the min/max clamp.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from wedsync_perf.errors import InvalidValue

__all__ = [
    "DEFAULT_DOWN",
    "DEFAULT_UP",
    "Hpa",
    "MetricReading",
    "ScalingPolicy",
    "ScalingRules",
]


@dataclass(frozen=True)
class ScalingPolicy:
    kind: Literal["Pods", "Percent"]
    value: int
    period_s: float


@dataclass(frozen=True)
class ScalingRules:
    stabilization_s: float
    policies: tuple[ScalingPolicy, ...]
    select: Literal["Max", "Min", "Disabled"] = "Max"


DEFAULT_UP = ScalingRules(0, (ScalingPolicy("Percent", 100, 15), ScalingPolicy("Pods", 4, 15)))
DEFAULT_DOWN = ScalingRules(300, (ScalingPolicy("Percent", 100, 15),))


@dataclass(frozen=True)
class MetricReading:
    """One metric: the per-ready-pod average and its target (e.g. rps per pod 40, or
    CPU utilisation 0.9 against 0.7). `missing`: pods with no sample yet."""

    name: str
    average: float
    target: float
    missing: int = 0


@dataclass
class Hpa:
    min_replicas: int = 1
    max_replicas: int = 100
    tolerance: float = 0.1
    up: ScalingRules = DEFAULT_UP
    down: ScalingRules = DEFAULT_DOWN
    _recommendations: deque[tuple[float, int]] = field(default_factory=deque)
    _events: deque[tuple[float, int]] = field(default_factory=deque)  # (time, change)

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise InvalidValue(
                "min_replicas/max_replicas",
                (self.min_replicas, self.max_replicas),
                "1 <= min_replicas <= max_replicas",
            )

    def _for_metric(self, reading: MetricReading, current: int, ready: int) -> int:
        if reading.target <= 0 or ready <= 0:
            return current
        ratio = reading.average / reading.target
        if reading.missing == 0:
            if abs(1 - ratio) <= self.tolerance:
                return current
            return math.ceil(ratio * ready)
        # Missing pods: 0 on a scale-up, the target on a scale-down (replica_calculator).
        total = reading.average * ready
        if ratio > 1:
            adjusted = total / (reading.target * (ready + reading.missing))
        else:
            adjusted = (total + reading.target * reading.missing) / (
                reading.target * (ready + reading.missing)
            )
        if abs(1 - adjusted) <= self.tolerance or (ratio > 1) != (adjusted > 1):
            return current
        desired = math.ceil(adjusted * (ready + reading.missing))
        if (ratio > 1 and desired < current) or (ratio < 1 and desired > current):
            return current
        return desired

    def recommend(self, current: int, ready: int, readings: Sequence[MetricReading]) -> int:
        """The raw recommendation: the largest over metrics (no behaviour applied)."""
        if not readings:
            return current
        return max(self._for_metric(r, current, ready) for r in readings)

    def _limit(self, rules: ScalingRules, current: int, now: float, up: bool) -> int:
        if rules.select == "Disabled":
            return current
        limits = []
        for policy in rules.policies:
            added = sum(d for t, d in self._events if now - t < policy.period_s and d > 0)
            removed = -sum(d for t, d in self._events if now - t < policy.period_s and d < 0)
            period_start = current - added + removed
            if up:
                limits.append(period_start + policy.value if policy.kind == "Pods"
                              else math.ceil(period_start * (1 + policy.value / 100)))  # fmt: skip
            else:
                limits.append(period_start - policy.value if policy.kind == "Pods"
                              else int(period_start * (1 - policy.value / 100)))  # fmt: skip
        pick = max if (rules.select == "Max") == up else min
        return pick(limits)

    def step(
        self, now: float, current: int, ready: int, readings: Sequence[MetricReading]
    ) -> tuple[int, str]:
        """One controller sync: the replica count to set and why."""
        raw = self.recommend(current, ready, readings)
        self._recommendations.append((now, raw))
        horizon = max(self.up.stabilization_s, self.down.stabilization_s)
        while self._recommendations and now - self._recommendations[0][0] > horizon:
            self._recommendations.popleft()
        up_window = [r for t, r in self._recommendations if now - t <= self.up.stabilization_s]
        down_window = [r for t, r in self._recommendations if now - t <= self.down.stabilization_s]
        desired = current
        up_rec, down_rec = min(up_window), max(down_window)
        if desired < up_rec:
            desired = up_rec
        if desired > down_rec:
            desired = down_rec
        reason = f"metrics want {raw}"
        if desired > current:
            limit = self._limit(self.up, current, now, up=True)
            if desired > limit:
                desired, reason = limit, f"{reason}; scale-up limited to {limit}"
        elif desired < current:
            limit = self._limit(self.down, current, now, up=False)
            if desired < limit:
                desired, reason = limit, f"{reason}; scale-down limited to {limit}"
            elif raw > desired:
                reason = f"{reason}; stabilised at {desired}"
        elif raw < current:
            reason = f"{reason}; held by the {self.down.stabilization_s:g} s scale-down window"
        desired = max(self.min_replicas, min(self.max_replicas, desired))
        if desired != current:
            self._events.append((now, desired - current))
        window = max((p.period_s for r in (self.up, self.down) for p in r.policies), default=0)
        while self._events and now - self._events[0][0] > window:
            self._events.popleft()
        return desired, reason
