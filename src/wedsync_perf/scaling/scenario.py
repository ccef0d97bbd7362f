"""The standard autoscaling comparison: a season trace, the service measured from the
reference API, every policy — shared by `wedsync-perf simulate` and
`make bench-autoscale`, so the command shows what the benchmark measures."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from wedsync_perf.calendar import WeddingCalendar
from wedsync_perf.errors import InvalidValue
from wedsync_perf.scaling.autoscaler import Forecaster, WeddingAutoscaler
from wedsync_perf.scaling.model import Trace, TrafficModel, generate_trace
from wedsync_perf.scaling.simulator import (
    AwsPredictive,
    CronFloor,
    HpaCpu,
    HpaRps,
    Policy,
    ServiceModel,
    SimResult,
    Static,
    Wedding,
    peak_replicas,
    simulate,
    typical_saturday_floor,
)

__all__ = ["Scenario", "synthetic_bookings"]

POLICIES = (
    "hpa",
    "hpa_cpu",
    "hpa_cron",
    "aws_predictive",
    "static",
    "wedding",
    "wedding_hold_all_day",
)


def synthetic_bookings(start: date, days: int, seed: int = 1) -> dict[date, int]:
    """Weddings per date: 300–700 on Saturdays, a few dozen on Fridays and Sundays."""
    rng = random.Random(seed)
    bookings = {}
    for offset in range(days):
        day = start + timedelta(days=offset)
        if day.weekday() == 5:
            bookings[day] = rng.randint(300, 700)
        elif day.weekday() in (4, 6):
            bookings[day] = rng.randint(20, 80)
    return bookings


@dataclass
class Scenario:
    """`warmup_days` feed the forecasters' history and are not scored."""

    start: date = date(2027, 5, 3)  # a Monday in May
    days: int = 35
    warmup_days: int = 14
    mu_rps: float = 900.0  # one replica's service rate (capacity measure, USL peak)
    utilisation: float = 0.7  # the target every policy scales to
    base_rps: float = 200.0
    season_factor: float = 10.0
    per_wedding_rps: float = 2.0
    rush_minutes: float = 1.5  # suppliers on site open the day's timeline within minutes
    seed: int = 3
    bookings: Mapping[date, int] | None = None
    calendar: WeddingCalendar = field(default_factory=WeddingCalendar)

    def __post_init__(self) -> None:
        if self.days <= self.warmup_days:
            raise InvalidValue("days", self.days, f"more than warmup_days ({self.warmup_days})")
        if self.bookings is None:
            self.bookings = synthetic_bookings(self.start, self.days)
        self.model = TrafficModel(self.calendar, base_rps=self.base_rps, season_factor=self.season_factor,
                                  per_wedding_rps=self.per_wedding_rps, rush_minutes=self.rush_minutes,
                                  bookings=dict(self.bookings))  # fmt: skip
        self.trace: Trace = generate_trace(self.model, self.start, self.days, seed=self.seed)
        self.service = ServiceModel(mu_rps=self.mu_rps)

    @property
    def capacity_rps(self) -> float:
        return self.mu_rps * self.utilisation

    def wedding_window(self, at: datetime) -> bool:
        """Where a scale-down is counted against a policy: an hour either side of a
        wedding day's rush (the strict variant also holds the rest of the day)."""
        if not self.calendar.is_wedding_day(at.date()):
            return False
        return abs(at.hour * 60 + at.minute - self.model.rush_hour * 60) <= 60

    def policy(self, name: str, forecast_bias: float = 1.0) -> Policy:
        cap = self.capacity_rps
        if name == "hpa":
            return HpaRps(cap)
        if name == "hpa_cpu":
            return HpaCpu(cap, target=self.utilisation)
        if name == "hpa_cron":
            return CronFloor(cap, floor=typical_saturday_floor(self.trace, self.service, self.calendar, self.utilisation),
                             calendar=self.calendar)  # fmt: skip
        if name == "aws_predictive":
            return AwsPredictive(cap)
        if name == "static":
            return Static(peak_replicas(self.trace, self.service, self.utilisation))
        if name in ("wedding", "wedding_hold_all_day"):
            forecaster = Forecaster(self.model, bias=forecast_bias)
            autoscaler = WeddingAutoscaler(forecaster, cap, calendar=self.calendar,
                                           hold_all_day=name == "wedding_hold_all_day")  # fmt: skip
            return Wedding(autoscaler, name=name)
        raise InvalidValue("policy", name, f"one of {', '.join(POLICIES)}")

    def run(self, name: str, forecast_bias: float = 1.0) -> SimResult:
        return simulate(self.trace, self.policy(name, forecast_bias), self.service,
                        wedding_window=self.wedding_window, warmup_minutes=self.warmup_days * 1440)  # fmt: skip

    def plot(self, results: Mapping[str, SimResult], path: Path) -> None:
        """Load, replicas and p95 over the last scored wedding week (Monday to Sunday)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        minutes = len(self.trace)
        week_start = max(self.warmup_days * 1440, minutes - 7 * 1440)
        week_start -= self.trace.at(week_start).weekday() * 1440
        week = slice(max(week_start, 0), min(week_start + 7 * 1440, minutes))
        hours = np.arange(week.stop - week.start) / 60
        fig, (load, reps, lat) = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
        load.plot(hours, self.trace.total[week], color="#444", linewidth=0.7)
        load.set_ylabel("requests/s")
        load.set_title(f"A wedding week from {self.trace.at(week.start):%a %d %b %Y}")
        for name, result in results.items():
            reps.plot(hours, result.replicas[week], linewidth=0.9, label=name)
            lat.plot(hours, np.minimum(result.p95_ms[week], 1000), linewidth=0.7, label=name)
        reps.set_ylabel("replicas")
        reps.legend(ncol=3, fontsize=8)
        lat.set_ylabel("p95 ms (capped at 1 s)")
        lat.axhline(100, color="#b3261e", linestyle="--", linewidth=0.8)
        lat.set_xlabel("hours")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)

    def summary(self, results: Mapping[str, SimResult]) -> dict[str, Any]:
        return {name: result.as_dict() for name, result in results.items()}
