"""Replay a traffic trace through a model of the service under an autoscaling policy.

The service: `replicas` identical servers with rate `mu_rps` each (from a load test of
the reference API) behind a balancer that approaches one shared queue, so a step's p95
is M/M/c's (`queueing`); past saturation, a fluid backlog builds and drains, and
latency includes it. Plus `base_s` (network, database) on every request.

Control loop as in Kubernetes: a sync every 15 s sees metrics 15 s old; new pods are
ready 90 s after they are asked for; removed pods go at once.

A minute violates its objective when its p95 is over 200 ms — or over 100 ms during a
wedding window (critical traffic dominates those minutes; the model has one queue).

Baselines (same trace, same service): HPA on rps per replica, HPA on CPU at 70 %
(CPU saturates at 100 %, so each sync grows at most ×1.43), HPA plus a KEDA-style cron
floor on season Saturdays, an AWS-style predictive policy (an hourly forecast from the
same hour of the last two weeks, 48 h ahead, 300 s lead, never scaling in on the
forecast), and a static fleet sized for the trace's peak.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np

from wedsync_perf.calendar import WeddingCalendar
from wedsync_perf.scaling.autoscaler import Decision, Observation, WeddingAutoscaler
from wedsync_perf.scaling.hpa import Hpa, MetricReading
from wedsync_perf.scaling.model import Trace
from wedsync_perf.scaling.queueing import response_quantile

__all__ = [
    "AwsPredictive",
    "CronFloor",
    "HpaCpu",
    "HpaRps",
    "Policy",
    "ServiceModel",
    "SimResult",
    "Static",
    "Wedding",
    "peak_replicas",
    "simulate",
    "typical_saturday_floor",
]

SYNC_S = 15.0


@dataclass(frozen=True)
class ServiceModel:
    mu_rps: float  # one replica's service rate
    base_s: float = 0.004  # added to every request (network, database)
    startup_s: float = 90.0
    metric_lag_s: float = 15.0
    target_s: float = 0.2
    wedding_target_s: float = 0.1


class Policy(Protocol):
    name: str

    def decide(self, seen: Observation) -> Decision: ...

    def observe_minute(self, at: datetime, rps: float) -> None: ...


@dataclass
class HpaRps:
    capacity_rps: float
    min_replicas: int = 2
    max_replicas: int = 200
    name: str = "hpa"
    hpa: Hpa = field(init=False)

    def __post_init__(self) -> None:
        self.hpa = Hpa(self.min_replicas, self.max_replicas)

    def decide(self, seen: Observation) -> Decision:
        reading = MetricReading("rps", seen.rps / max(seen.ready, 1), self.capacity_rps,
                                missing=seen.current - seen.ready)  # fmt: skip
        replicas, why = self.hpa.step(seen.now, seen.current, seen.ready, [reading])
        return Decision(replicas, why)

    def observe_minute(self, at: datetime, rps: float) -> None:
        return None


@dataclass
class HpaCpu(HpaRps):
    target: float = 0.7
    name: str = "hpa_cpu"

    def decide(self, seen: Observation) -> Decision:
        reading = MetricReading("cpu", seen.cpu, self.target, missing=seen.current - seen.ready,
                                kind="Utilization")  # fmt: skip
        replicas, why = self.hpa.step(seen.now, seen.current, seen.ready, [reading])
        return Decision(replicas, why)


@dataclass
class CronFloor(HpaRps):
    """HPA plus KEDA's cron trigger: a floor on season Saturdays (the HPA takes the max)."""

    floor: int = 2
    calendar: WeddingCalendar = field(default_factory=WeddingCalendar)
    start_hour: int = 8
    end_hour: int = 22
    name: str = "hpa_cron"

    def decide(self, seen: Observation) -> Decision:
        at = datetime.fromtimestamp(seen.now, tz=UTC)
        reactive = super().decide(seen)
        in_window = (
            self.calendar.is_wedding_day(at.date()) and self.start_hour <= at.hour < self.end_hour
        )
        if in_window and self.floor > reactive.replicas:
            return Decision(self.floor, f"cron floor {self.floor}")
        return reactive


@dataclass
class AwsPredictive(HpaRps):
    """Target tracking plus predictive scaling as AWS documents it: hourly forecast from
    history only (here: the same hour of the week, mean of the last two weeks), applied
    `lead_s` early as a minimum; scale-in only ever comes from the reactive part."""

    lead_s: float = 300.0
    name: str = "aws_predictive"
    _hourly: dict[datetime, list[float]] = field(default_factory=dict)

    def observe_minute(self, at: datetime, rps: float) -> None:
        self._hourly.setdefault(at.replace(minute=0, second=0, microsecond=0), []).append(rps)

    def _forecast(self, at: datetime) -> float | None:
        hour = at.replace(minute=0, second=0, microsecond=0)
        seen = [
            max(self._hourly[h]) for w in (1, 2) if (h := hour - timedelta(weeks=w)) in self._hourly
        ]
        return sum(seen) / len(seen) if seen else None

    def decide(self, seen: Observation) -> Decision:
        reactive = super().decide(seen)
        at = datetime.fromtimestamp(seen.now, tz=UTC) + timedelta(seconds=self.lead_s)
        forecast = self._forecast(at)
        if forecast is None:
            return reactive
        floor = math.ceil(forecast / self.capacity_rps)
        if floor > reactive.replicas:
            return Decision(floor, f"forecast floor {floor}")
        return reactive


@dataclass
class Static:
    replicas: int
    name: str = "static"

    def decide(self, seen: Observation) -> Decision:
        return Decision(self.replicas, "static")

    def observe_minute(self, at: datetime, rps: float) -> None:
        return None


@dataclass
class Wedding:
    """Adapter: our `WeddingAutoscaler` as a simulator policy."""

    autoscaler: WeddingAutoscaler
    name: str = "wedding"

    def decide(self, seen: Observation) -> Decision:
        return self.autoscaler.decide(seen)

    def observe_minute(self, at: datetime, rps: float) -> None:
        self.autoscaler.forecaster.observe(at, rps)


@dataclass
class SimResult:
    name: str
    violation_minutes: int
    instance_hours: float
    scale_events: int
    scale_downs_in_wedding_windows: int
    replicas: np.ndarray  # per minute
    p95_ms: np.ndarray  # per minute
    critical_violations_on_saturdays: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "violation_minutes": self.violation_minutes,
            "instance_hours": round(self.instance_hours, 1),
            "scale_events": self.scale_events,
            "scale_downs_in_wedding_windows": self.scale_downs_in_wedding_windows,
            "critical_violations_on_saturdays": self.critical_violations_on_saturdays,
        }


def simulate(
    trace: Trace,
    policy: Policy,
    service: ServiceModel,
    *,
    initial: int = 2,
    wedding_window: Callable[[datetime], bool] | None = None,
    warmup_minutes: int = 0,
) -> SimResult:
    """Replay `trace`; the first `warmup_minutes` feed the policy's history but are not
    scored (forecasters need a past)."""
    steps_per_minute = int(60 / SYNC_S)
    lag_steps = max(1, int(service.metric_lag_s / SYNC_S))
    replicas = initial
    pending: deque[tuple[float, int]] = deque()  # (ready at, count)
    ready = initial
    backlog = 0.0
    history: deque[tuple[float, float, float | None, float]] = deque(maxlen=lag_steps + 1)
    minutes = len(trace)
    per_minute_replicas = np.zeros(minutes)
    per_minute_p95 = np.zeros(minutes)
    violations = events = downs_in_window = critical_saturday = 0
    instance_s = 0.0
    quantiles: dict[tuple[float, int], float] = {}
    start = trace.start.timestamp()
    for minute in range(minutes):
        at = trace.at(minute)
        lam = float(trace.total[minute])
        worst = 0.0
        for step in range(steps_per_minute):
            now = start + minute * 60 + step * SYNC_S
            while pending and pending[0][0] <= now:
                ready += pending.popleft()[1]
            capacity = ready * service.mu_rps
            backlog = max(0.0, backlog + (lam - capacity) * SYNC_S)
            if backlog > 0 or lam >= capacity:
                p95 = service.base_s + backlog / max(capacity, 1e-9) + 3.0 / service.mu_rps
            else:
                key = (round(lam, 1), ready)
                quantile = quantiles.get(key)
                if quantile is None:
                    quantile = quantiles[key] = response_quantile(
                        0.95, lam, service.mu_rps, max(ready, 1)
                    )
                p95 = service.base_s + quantile
            worst = max(worst, p95)
            cpu = min(1.0, lam / max(capacity, 1e-9))
            history.append((lam, cpu, p95, now))
            seen_lam, seen_cpu, seen_p95, _ = history[0]
            decision = policy.decide(
                Observation(now, replicas, ready, seen_lam, seen_p95, seen_cpu)
            )
            if decision.replicas != replicas:
                events += 1
                if decision.replicas > replicas:
                    pending.append((now + service.startup_s, decision.replicas - replicas))
                else:
                    if wedding_window is not None and wedding_window(at):
                        downs_in_window += 1
                    remove = replicas - decision.replicas
                    while remove and pending:  # cancel pods still starting first
                        when, count = pending.pop()
                        taken = min(count, remove)
                        remove -= taken
                        if count > taken:
                            pending.append((when, count - taken))
                    ready -= remove
                replicas = decision.replicas
            instance_s += replicas * SYNC_S
        policy.observe_minute(at, lam)
        per_minute_replicas[minute] = replicas
        per_minute_p95[minute] = worst * 1000
        if minute < warmup_minutes:
            instance_s = 0.0 if minute == warmup_minutes - 1 else instance_s
            continue
        in_window = wedding_window is not None and wedding_window(at)
        target = service.wedding_target_s if in_window else service.target_s
        if worst > target:
            violations += 1
            if in_window:
                critical_saturday += 1
    return SimResult(
        policy.name, violations, instance_s / 3600, events, downs_in_window,
        per_minute_replicas, per_minute_p95, critical_saturday,
    )  # fmt: skip


def peak_replicas(trace: Trace, service: ServiceModel, utilisation: float = 0.7) -> int:
    """A static fleet for the trace's peak at `utilisation` (what ops would provision)."""
    return math.ceil(float(np.max(trace.total)) / (service.mu_rps * utilisation))


def typical_saturday_floor(trace: Trace, service: ServiceModel, calendar: WeddingCalendar,
                           utilisation: float = 0.7) -> int:  # fmt: skip
    """The cron floor an operator would set: the mean season-Saturday peak."""
    peaks: list[float] = []
    for day in range(len(trace) // 1440):
        at = trace.at(day * 1440)
        if calendar.is_wedding_day(at.date()):
            peaks.append(float(np.max(trace.total[day * 1440 : (day + 1) * 1440])))
    return (
        math.ceil((sum(peaks) / len(peaks) if peaks else 0.0) / (service.mu_rps * utilisation)) or 1
    )
