"""The Kubernetes Horizontal Pod Autoscaler's algorithm, as the reactive baseline and
the reactive half of our policy.

Follows `pkg/controller/podautoscaler` (replica_calculator.go, horizontal.go) for Pods
and Resource-utilisation metrics with a `behavior` set (as our manifests set it); its
own test tables run against this module (tests/unit/test_hpa_upstream.py).

* per metric, usage ratio r = average per ready pod ÷ target (for utilisation, the
  average is first truncated to a whole percent, as the controller's integer maths
  does); within the tolerance band [1 − 0.1, 1 + 0.1] nothing changes; else desired =
  ceil(r × ready pods);
* pods with no sample are *missing*: on a scale-up they count as using 0; on a
  scale-down as using the target (utilisation: max(100 %, target) of their request);
  pods with a sample the controller sets aside (*unready*) count as 0 on a scale-up and
  not at all on a scale-down; a result that would reverse direction is dropped;
* several metrics: the largest recommendation (never below the current count, so an
  unreadable metric blocks a scale-down, as upstream);
* behaviour: stabilisation (the current count held between the smallest recommendation
  of the scale-up window, 0 s by default, and the largest of the scale-down window,
  300 s; the first sync records the current count as a recommendation), then rate
  limits per policy over its period (scale-up: max(+100 %, +4 pods) per 15 s;
  scale-down: −100 % per 15 s), never past the current count in the wrong direction,
  together with the min/max bounds;
* a target at 0 replicas is left alone (autoscaling disabled); one above max or below
  min goes straight to the bound.

Requests are taken as equal across pods (one Deployment's pods). Scale to zero
(`min_replicas=0`) is refused: upstream it needs an Object or External metric, which
this model does not take, since per-pod metrics have no pods to read at 0 replicas.
Upstream reuses one slot of its event and recommendation logs per sync; here entries
are dropped once older than every window and period that could count them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from wedsync_perf.errors import InvalidValue

__all__ = [
    "DEFAULT_DOWN",
    "DEFAULT_UP",
    "Hpa",
    "MetricReading",
    "ScaleEvent",
    "ScalingPolicy",
    "ScalingRules",
    "rate_limited",
    "stabilised",
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
    """One metric: the average over ready pods and its target (e.g. rps per pod 40
    against 100, or CPU utilisation 0.9 of the request against 0.7). `missing`: pods
    with no sample; `unready`: pods whose sample the controller sets aside (not ready,
    or CPU still warming up). `kind="Utilization"` for a fraction of the request, whose
    target the controller takes in whole percent."""

    name: str
    average: float
    target: float
    missing: int = 0
    unready: int = 0
    kind: Literal["AverageValue", "Utilization"] = "AverageValue"


@dataclass(frozen=True)
class ScaleEvent:
    """A change the controller made at `at`: replicas added (> 0) or removed (< 0)."""

    at: float
    change: int


def stabilised(
    history: Iterable[tuple[float, int]],
    now: float,
    current: int,
    desired: int,
    up: ScalingRules,
    down: ScalingRules,
) -> int:
    """The current count held between the smallest recommendation of the scale-up
    window and the largest of the scale-down window (`desired` counts as one made now;
    a window of w s holds those made after now − w)."""
    up_rec = down_rec = desired
    for at, replicas in history:
        if at > now - up.stabilization_s:
            up_rec = min(up_rec, replicas)
        if at > now - down.stabilization_s:
            down_rec = max(down_rec, replicas)
    return min(max(current, up_rec), down_rec)


def _limit(
    current: int, events: Sequence[ScaleEvent], rules: ScalingRules, now: float, up: bool
) -> int:
    """The furthest count the policies allow from where each period started."""
    if rules.select == "Disabled":
        return current
    proposals = []
    for policy in rules.policies:
        recent = [e.change for e in events if e.at > now - policy.period_s]
        start = current - sum(recent)
        sign = 1 if up else -1
        if policy.kind == "Pods":
            proposals.append(start + sign * policy.value)
        elif up:  # rounded up, or a small percentage of a small count would never add a pod
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
        else:  # truncated toward 0, as Go's int32(); the same float product as upstream's
            proposals.append(int(start * (1 - policy.value / 100)))
    # "Max" selects the largest change, which on the way down is the lowest count
    return (max if (rules.select == "Max") == up else min)(proposals)


def rate_limited(
    now: float,
    current: int,
    desired: int,
    *,
    min_replicas: int,
    max_replicas: int,
    up: ScalingRules,
    down: ScalingRules,
    events: Sequence[ScaleEvent],
) -> tuple[int, str]:
    """`desired` held to the policies' rate over their periods and to the bounds, and
    the controller's name for what limited it (`DesiredWithinRange`, `ScaleUpLimit`,
    `TooManyReplicas`, `ScaleDownLimit`, `TooFewReplicas`). A limit is never past the
    current count: recent changes can stop a scale, never reverse it."""
    if desired > current:
        limit = max(_limit(current, events, up, now, up=True), current)
        ceiling, why = (
            (limit, "ScaleUpLimit") if max_replicas > limit else (max_replicas, "TooManyReplicas")
        )
        if desired > ceiling:
            return ceiling, why
    elif desired < current:
        limit = min(_limit(current, events, down, now, up=False), current)
        floor, why = (
            (limit, "ScaleDownLimit") if min_replicas < limit else (min_replicas, "TooFewReplicas")
        )
        if desired < floor:
            return floor, why
    return desired, "DesiredWithinRange"


@dataclass
class Hpa:
    min_replicas: int = 1
    max_replicas: int = 100
    tolerance: float = 0.1
    up: ScalingRules = DEFAULT_UP
    down: ScalingRules = DEFAULT_DOWN
    _recommendations: deque[tuple[float, int]] = field(default_factory=deque)
    _events: deque[ScaleEvent] = field(default_factory=deque)
    _seen: bool = False

    def __post_init__(self) -> None:
        if self.min_replicas == 0:
            raise InvalidValue(
                "min_replicas",
                0,
                "at least 1: scaling to zero needs an Object or External metric, which this "
                "model does not take (per-pod metrics have no pods to read at 0 replicas)",
            )
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise InvalidValue(
                "min_replicas/max_replicas",
                (self.min_replicas, self.max_replicas),
                "1 <= min_replicas <= max_replicas",
            )

    def _within(self, ratio: float) -> bool:
        return 1 - self.tolerance <= ratio <= 1 + self.tolerance

    @staticmethod
    def _ratio(reading: MetricReading, average: float) -> float:
        if reading.kind == "Utilization":
            # whole percent over whole percent, as GetResourceUtilizationRatio computes it;
            # the round() keeps 0.29 from becoming 28.999… before the floor
            return math.floor(round(average * 100, 6)) / round(reading.target * 100)
        return average / reading.target

    def _for_metric(self, reading: MetricReading, current: int, ready: int) -> int:
        if reading.target <= 0 or ready <= 0:
            return current
        ratio = self._ratio(reading, reading.average)
        up_with_unready = reading.unready > 0 and ratio > 1
        if not up_with_unready and reading.missing == 0:
            return current if self._within(ratio) else math.ceil(ratio * ready)
        total, counted = reading.average * ready, ready
        if reading.missing and ratio != 1:
            counted += reading.missing
            if ratio < 1:  # missing pods as busy, so they hold a scale-down back
                full = 1.0 if reading.kind == "Utilization" else reading.target
                total += max(full, reading.target) * reading.missing
        if up_with_unready:
            counted += reading.unready  # at 0, so they hold a scale-up back
        adjusted = self._ratio(reading, total / counted)
        if self._within(adjusted) or (ratio < 1 < adjusted) or (ratio > 1 > adjusted):
            return current
        desired = math.ceil(adjusted * counted)
        if (adjusted < 1 and desired > current) or (adjusted > 1 and desired < current):
            return current
        return desired

    def recommend(self, current: int, ready: int, readings: Sequence[MetricReading]) -> int:
        """The raw recommendation: the largest over metrics (no behaviour applied)."""
        if not readings:
            return current
        return max(self._for_metric(r, current, ready) for r in readings)

    def step(
        self, now: float, current: int, ready: int, readings: Sequence[MetricReading]
    ) -> tuple[int, str]:
        """One controller sync (`now` in seconds, never decreasing): the replica count
        to set and why."""
        if current == 0:
            return 0, "scaling disabled: the target has 0 replicas"
        if not self._seen:
            self._seen = True
            self._recommendations.append((now, current))
        if current > self.max_replicas:
            desired, reason = self.max_replicas, f"{current} is above max_replicas"
        elif current < self.min_replicas:
            desired, reason = self.min_replicas, f"{current} is below min_replicas"
        else:
            raw = self.recommend(current, ready, readings)
            held = stabilised(self._recommendations, now, current, raw, self.up, self.down)
            self._recommendations.append((now, raw))
            horizon = max(self.up.stabilization_s, self.down.stabilization_s)
            while self._recommendations and self._recommendations[0][0] <= now - horizon:
                self._recommendations.popleft()
            desired, limited = rate_limited(
                now, current, held, min_replicas=self.min_replicas,
                max_replicas=self.max_replicas, up=self.up, down=self.down,
                events=tuple(self._events),
            )  # fmt: skip
            reason = f"metrics want {raw}"
            if held != raw:
                reason += f"; stabilised at {held}"
            if limited != "DesiredWithinRange":
                reason += f"; {limited}: {desired}"
        if desired != current:
            self._events.append(ScaleEvent(now, desired - current))
        period = max((p.period_s for r in (self.up, self.down) for p in r.policies), default=0)
        while self._events and self._events[0].at <= now - period:
            self._events.popleft()
        return desired, reason
