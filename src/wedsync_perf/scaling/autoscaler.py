"""Our autoscaling policy: a faithful HPA for what nobody predicted, a forecast for what
the wedding calendar says is coming.

* **Reactive**: the HPA algorithm (`hpa.Hpa`) over rps per ready replica, p95 against
  its target and CPU; the largest wins, as in Kubernetes.
* **Predictive**: replicas for the forecast's upper quantile over the next
  `lead_s` + `horizon_s` (start-up, metric lag and a margin), so pods are ready before
  the 10:00 rush rather than after it. The forecast comes from the traffic model
  (season, weekday, hour, weddings booked that day), its level calibrated on recent
  history.
* **Wedding days**: from `hold_from_hour` until `hold_until_hour` of a wedding day
  nothing scales down, and the day's forecast peak is a floor.

`decide` returns the replica count and the reason, for the log and the dashboard.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from wedsync_perf.calendar import WeddingCalendar
from wedsync_perf.scaling.hpa import Hpa, MetricReading
from wedsync_perf.scaling.model import TrafficModel

__all__ = ["Decision", "Forecaster", "Observation", "WeddingAutoscaler"]


@dataclass(frozen=True)
class Observation:
    """What the controller sees at one sync (already lagged by the metrics pipeline)."""

    now: float  # unix seconds
    current: int
    ready: int
    rps: float
    p95_s: float | None
    cpu: float  # mean utilisation of ready replicas, 0..1


@dataclass(frozen=True)
class Decision:
    replicas: int
    reason: str


@dataclass
class Forecaster:
    """The traffic model's expectation, its level fitted to what was observed lately.

    `observe` feeds per-minute rps; `forecast(t)` = level × model(t); `upper(t)` adds
    `z` standard deviations of the log residuals. `bias` scales the result (the
    benchmark uses it to make the forecast deliberately wrong)."""

    model: TrafficModel
    z: float = 1.28  # 90th percentile
    window_minutes: int = 7 * 1440
    refit_every: int = 60  # observations between refits of the level
    bias: float = 1.0
    _ratios: deque[float] = field(default_factory=deque)
    _fit: tuple[float, float] = (1.0, 0.1)
    _since_fit: int = 0
    _hourly: dict[datetime, float] = field(default_factory=dict)

    def expected(self, at: datetime) -> float:
        """The model's rate for `at`'s minute, memoised."""
        minute = at.replace(second=0, microsecond=0)
        value = self._hourly.get(minute)
        if value is None:
            if len(self._hourly) > 200_000:
                self._hourly.clear()
            value = self._hourly[minute] = self.model.expected_rps(minute)
        return value

    def observe(self, at: datetime, rps: float) -> None:
        expected = self.expected(at)
        if expected > 0 and rps > 0:
            self._ratios.append(math.log(rps / expected))
            while len(self._ratios) > self.window_minutes:
                self._ratios.popleft()
            self._since_fit += 1
            if self._since_fit >= self.refit_every and len(self._ratios) >= 60:
                values = np.fromiter(self._ratios, dtype=float)
                self._fit = (float(np.exp(np.median(values))), float(values.std()))
                self._since_fit = 0

    def forecast(self, at: datetime) -> float:
        return self.bias * self._fit[0] * self.expected(at)

    def upper(self, at: datetime) -> float:
        level, spread = self._fit
        return self.bias * level * self.expected(at) * math.exp(self.z * spread)


@dataclass
class WeddingAutoscaler:
    """`capacity_rps`: what one replica serves at its target utilisation (from the
    capacity planner's load test)."""

    forecaster: Forecaster
    capacity_rps: float
    p95_target_s: float = 0.2
    cpu_target: float = 0.7
    min_replicas: int = 2
    max_replicas: int = 200
    lead_s: float = 180.0
    horizon_s: float = 600.0
    hold_from_hour: int = 6
    hold_until_hour: int = 23
    calendar: WeddingCalendar = field(default_factory=WeddingCalendar)
    hpa: Hpa = field(init=False)
    clock_to_datetime: Callable[[float], datetime] = lambda t: datetime.fromtimestamp(t, UTC)

    def __post_init__(self) -> None:
        if self.capacity_rps <= 0:
            raise ValueError("capacity_rps must be positive")
        self.hpa = Hpa(self.min_replicas, self.max_replicas)

    def in_wedding_window(self, at: datetime) -> bool:
        return (
            self.calendar.is_wedding_day(at.date())
            and self.hold_from_hour <= at.hour < self.hold_until_hour
        )

    def predicted(self, at: datetime) -> int:
        """Replicas for the forecast's upper quantile over [at + lead, at + lead + horizon]."""
        step = timedelta(minutes=1)
        start = at + timedelta(seconds=self.lead_s)
        steps = max(1, int(self.horizon_s // 60))
        peak = max(self.forecaster.upper(start + i * step) for i in range(steps + 1))
        if self.in_wedding_window(at):  # the rest of the day's peak is a floor
            end = at.replace(hour=self.hold_until_hour - 1, minute=59)
            hours = max(0, int((end - at).total_seconds() // 3600))
            peak = max(
                [peak] + [self.forecaster.upper(at + timedelta(hours=h)) for h in range(hours + 1)]
            )
        return math.ceil(peak / self.capacity_rps)

    def decide(self, seen: Observation) -> Decision:
        readings = [
            MetricReading("rps_per_replica", seen.rps / max(seen.ready, 1), self.capacity_rps,
                          missing=seen.current - seen.ready),
            MetricReading("cpu", seen.cpu, self.cpu_target, missing=seen.current - seen.ready),
        ]  # fmt: skip
        if seen.p95_s is not None:
            readings.append(MetricReading("p95", seen.p95_s, self.p95_target_s))
        reactive, why = self.hpa.step(seen.now, seen.current, seen.ready, readings)
        at = self.clock_to_datetime(seen.now)
        predicted = self.predicted(at)
        desired, reason = reactive, f"reactive: {why}"
        if predicted > desired:
            desired, reason = (
                predicted,
                f"forecast needs {predicted} within {self.lead_s + self.horizon_s:g} s",
            )
        if self.in_wedding_window(at) and desired < seen.current:
            desired, reason = seen.current, "wedding day: no scale-down until the evening"
        desired = max(self.min_replicas, min(self.max_replicas, desired))
        return Decision(desired, reason)
