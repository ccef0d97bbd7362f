"""Our autoscaling policy: a faithful HPA for what nobody predicted, a forecast for what
the wedding calendar says is coming.

* **Reactive**: the HPA algorithm (`hpa.Hpa`) over rps per ready replica, p95 against
  its target and CPU; the largest wins, as in Kubernetes.
* **Predictive**: replicas for the forecast's upper quantile over the next
  `lead_s` + `horizon_s` (start-up, metric lag and a margin), so pods are ready before
  the 10:00 rush rather than after it. The forecast comes from the traffic model
  (season, weekday, hour, weddings booked that day), its level calibrated on recent
  history.
* **Wedding days**: from `hold_from_hour` until `hold_until_hour` the fleet never goes
  below the forecast's upper quantile for the coming hour (a floor that looks ahead, so
  it rises before the rush and falls after it), and around the rush (±`rush_hold_minutes`)
  nothing scales down at all. `hold_all_day=True` is the strict variant: no scale-down
  from `hold_from_hour` to `hold_until_hour` — it keeps the rush's peak all day
  (`make bench-autoscale` prices both).

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
from wedsync_perf.errors import InvalidValue
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
                centre = float(np.median(values))
                # Robust spread (MAD): ramps the hourly model steps through are outliers,
                # not the noise the upper quantile is for.
                spread = 1.4826 * float(np.median(np.abs(values - centre)))
                self._fit = (math.exp(centre), spread)
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
    rush_hold_minutes: int = 60
    hold_all_day: bool = False
    calendar: WeddingCalendar = field(default_factory=WeddingCalendar)
    hpa: Hpa = field(init=False)
    clock_to_datetime: Callable[[float], datetime] = lambda t: datetime.fromtimestamp(t, UTC)

    def __post_init__(self) -> None:
        if self.capacity_rps <= 0:
            raise InvalidValue("capacity_rps", self.capacity_rps, "a positive rate per replica")
        self.hpa = Hpa(self.min_replicas, self.max_replicas)

    def in_wedding_window(self, at: datetime) -> bool:
        return (
            self.calendar.is_wedding_day(at.date())
            and self.hold_from_hour <= at.hour < self.hold_until_hour
        )

    def in_rush(self, at: datetime) -> bool:
        """Within `rush_hold_minutes` of a wedding day's rush: no scale-down at all."""
        if not self.calendar.is_wedding_day(at.date()):
            return False
        minute = at.hour * 60 + at.minute
        return abs(minute - self.forecaster.model.rush_hour * 60) <= self.rush_hold_minutes

    def _floor(self, at: datetime) -> int:
        """The coming hour's forecast peak (upper quantile), in replicas."""
        peak = max(self.forecaster.upper(at + timedelta(minutes=m)) for m in range(0, 61, 5))
        return math.ceil(peak / self.capacity_rps)

    def predicted(self, at: datetime) -> int:
        """Replicas for the forecast over [at + lead, at + lead + horizon]: its upper
        quantile on wedding days (a miss costs an event); otherwise its median, held to
        the same 10 % tolerance band the reactive HPA keeps (so on an ordinary day the
        forecast only leads the HPA up a ramp, it does not out-provision it)."""
        step = timedelta(minutes=1)
        start = at + timedelta(seconds=self.lead_s)
        steps = max(1, int(self.horizon_s // 60))
        if self.calendar.is_wedding_day(at.date()):
            peak = max(self.forecaster.upper(start + i * step) for i in range(steps + 1))
            return math.ceil(peak / self.capacity_rps)
        peak = max(self.forecaster.forecast(start + i * step) for i in range(steps + 1))
        return math.ceil(peak / (self.capacity_rps * (1 + self.hpa.tolerance)))

    def decide(self, seen: Observation) -> Decision:
        readings = [
            MetricReading("rps_per_replica", seen.rps / max(seen.ready, 1), self.capacity_rps,
                          missing=seen.current - seen.ready),
            MetricReading("cpu", seen.cpu, self.cpu_target, missing=seen.current - seen.ready,
                          kind="Utilization"),
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
        if self.in_wedding_window(at):
            floor = self._floor(at)
            if floor > desired:
                desired, reason = floor, f"wedding day: the coming hour's forecast needs {floor}"
            frozen = self.hold_all_day or self.in_rush(at)
            if frozen and desired < seen.current:
                desired, reason = seen.current, "wedding day: no scale-down around the rush"
        desired = max(self.min_replicas, min(self.max_replicas, desired))
        return Decision(desired, reason)
