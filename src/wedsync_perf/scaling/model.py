"""Expected WedSync traffic for any minute, and seeded per-minute traces of a year.

The rate is a product of shapes — hour of day (a morning rush), day of week, season
(May–October ≈ 10x), holidays — plus, on each date with weddings booked, a wedding-day
surge proportional to the number of weddings (suppliers on site open timelines and
check in through the day, peaking around 10:00). All shapes are parameters, so a
deployment calibrates them: `calibrate_weekly` fits the hour-of-week profile from the
monitoring layer's fleet profile, `bookings` come from the database.

Traces (`generate_trace`) multiply the expected rate by seeded noise (lognormal
minute-to-minute jitter, with AR(1) persistence so bursts last minutes, not seconds):
the simulator, the benchmarks and the demo's driver replay the same year for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from wedsync_perf.calendar import Regime, WeddingCalendar
from wedsync_perf.errors import InvalidValue
from wedsync_perf.priorities import PriorityClass
from wedsync_perf.traffic import MIX_BY_REGIME

__all__ = ["Trace", "TrafficModel", "calibrate_weekly", "generate_trace"]

# Share of a day's traffic per hour (UTC), planning work: office hours, evening tail.
_DIURNAL = (0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.45, 0.8, 1.2, 1.5, 1.6, 1.6,
            1.5, 1.55, 1.6, 1.55, 1.4, 1.25, 1.2, 1.3, 1.3, 1.1, 0.7, 0.35)  # fmt: skip
# Monday .. Sunday
_WEEKLY = (1.1, 1.15, 1.15, 1.1, 1.0, 0.75, 0.6)
# A wedding day's own traffic by hour: set-up from 07:00, the 10:00 rush, the evening.
_WEDDING_HOURS = (0, 0, 0, 0, 0, 0, 0.2, 0.9, 1.8, 2.6, 3.0, 2.4,
                  1.8, 1.6, 1.7, 1.6, 1.4, 1.3, 1.2, 1.0, 0.7, 0.4, 0.15, 0.05)  # fmt: skip


def _normalise(values: Sequence[float]) -> tuple[float, ...]:
    mean = sum(values) / len(values)
    return tuple(v / mean for v in values)


@dataclass(frozen=True)
class TrafficModel:
    """Requests per second, total and per priority class, for any moment.

    `base_rps`: the off-season weekday average. `season_factor`: how much busier the
    season is. `per_wedding_rps`: the average extra load one booked wedding brings on its
    day (shaped by `wedding_hours`). `holidays`: dates with `holiday_factor` applied.
    """

    calendar: WeddingCalendar = field(default_factory=WeddingCalendar)
    base_rps: float = 20.0
    season_factor: float = 10.0
    per_wedding_rps: float = 0.05
    diurnal: tuple[float, ...] = _normalise(_DIURNAL)
    weekly: tuple[float, ...] = _normalise(_WEEKLY)
    wedding_hours: tuple[float, ...] = _normalise(_WEDDING_HOURS)
    bookings: Mapping[date, int] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()
    holiday_factor: float = 0.5
    rush_hour: float = 10.0  # when suppliers on site all open the day's timeline
    rush_minutes: float = 4.0  # its width (standard deviation): a few minutes
    rush_height: float = 2.0  # on top of the wedding load at that hour, as a multiple

    def __post_init__(self) -> None:
        for name, length in (("diurnal", 24), ("wedding_hours", 24), ("weekly", 7)):
            if len(getattr(self, name)) != length:
                raise InvalidValue(f"len({name})", len(getattr(self, name)), f"{length} values")
        for name in ("base_rps", "season_factor", "per_wedding_rps"):
            if getattr(self, name) < 0:
                raise InvalidValue(name, getattr(self, name), "a non-negative number")

    def weddings_on(self, day: date) -> int:
        """Weddings booked that day; a season Saturday with no data counts as a typical
        one (the mean of known season Saturdays, or 0)."""
        if day in self.bookings:
            return self.bookings[day]
        if self.calendar.is_wedding_day(day) and self.bookings:
            saturdays = [
                n
                for d, n in self.bookings.items()
                if d.weekday() == 5 and self.calendar.in_season(d)
            ]
            return round(sum(saturdays) / len(saturdays)) if saturdays else 0
        return 0

    def planning_rps(self, at: datetime) -> float:
        """The background (planning) load, before any wedding-day surge."""
        day = at.date()
        rate = self.base_rps * self.diurnal[at.hour] * self.weekly[day.weekday()]
        if self.calendar.in_season(day):
            rate *= self.season_factor
        if day in self.holidays:
            rate *= self.holiday_factor
        return rate

    def wedding_rps(self, at: datetime) -> float:
        """The surge the day's weddings bring at `at`, rush included (minute resolution)."""
        level = self.per_wedding_rps * self.weddings_on(at.date()) * self.wedding_hours[at.hour]
        return float(level * (1 + self.rush_height * self.rush(at.hour * 60 + at.minute)))

    def rush(self, minute_of_day: float | np.ndarray) -> Any:
        """The rush's shape: 1 at its peak, a Gaussian in minutes around `rush_hour`."""
        return np.exp(
            -0.5 * ((np.asarray(minute_of_day) - self.rush_hour * 60) / self.rush_minutes) ** 2
        )

    def expected_rps(self, at: datetime) -> float:
        return self.planning_rps(at) + self.wedding_rps(at)

    def expected_by_class(self, at: datetime) -> dict[PriorityClass, float]:
        """Split by class: planning traffic with the day's regime mix, wedding-day
        surge as critical work."""
        regime = self.calendar.regime(at)
        mix = MIX_BY_REGIME[Regime.SEASON if regime is Regime.WEDDING_DAY else regime]
        out = {c: mix.rate(self.planning_rps(at), c) for c in PriorityClass}
        out[PriorityClass.CRITICAL] += self.wedding_rps(at)
        return out


def calibrate_weekly(model: TrafficModel, hour_of_week_rps: Sequence[float]) -> TrafficModel:
    """A model whose diurnal and weekly shapes (and base) match a measured off-season
    hour-of-week profile (168 values, Monday 00:00 first: the fleet store's profile)."""
    if len(hour_of_week_rps) != 168:
        raise InvalidValue(
            "len(hour_of_week_rps)", len(hour_of_week_rps), "168 values (Monday 00:00 first)"
        )
    grid = np.asarray(hour_of_week_rps, dtype=float).reshape(7, 24)
    if grid.sum() <= 0:
        raise InvalidValue(
            "sum(hour_of_week_rps)", float(grid.sum()), "a profile with some traffic"
        )
    base = float(grid.mean())
    by_hour = grid.mean(axis=0) / base
    by_day = grid.mean(axis=1) / base
    return TrafficModel(
        calendar=model.calendar,
        base_rps=base,
        season_factor=model.season_factor,
        per_wedding_rps=model.per_wedding_rps,
        diurnal=tuple(float(v) for v in by_hour),
        weekly=tuple(float(v) for v in by_day),
        wedding_hours=model.wedding_hours,
        bookings=model.bookings,
        holidays=model.holidays,
        holiday_factor=model.holiday_factor,
    )


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    half = width // 2
    padded = np.pad(values, half, mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="same")[half : half + len(values)]


@dataclass(frozen=True)
class Trace:
    """Per-minute requests/s from `start` (UTC): total and critical."""

    start: datetime
    total: np.ndarray  # float64, one value per minute
    critical: np.ndarray

    def at(self, minute: int) -> datetime:
        return self.start + timedelta(minutes=minute)

    def __len__(self) -> int:
        return len(self.total)


def generate_trace(
    model: TrafficModel,
    start: date,
    days: int,
    *,
    seed: int = 7,
    jitter: float = 0.08,
    persistence: float = 0.9,
) -> Trace:
    """`days` of per-minute traffic from `start`, deterministic for a seed."""
    if days < 1:
        raise InvalidValue("days", days, "at least 1 day")
    rng = np.random.default_rng(seed)
    minutes = days * 1440
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    planning = np.empty(minutes)
    wedding = np.empty(minutes)
    for hour in range(days * 24):
        at = first + timedelta(hours=hour)
        planning[hour * 60 : hour * 60 + 60] = model.planning_rps(at)
        wedding[hour * 60 : hour * 60 + 60] = (
            model.per_wedding_rps * model.weddings_on(at.date()) * model.wedding_hours[at.hour]
        )
    # Hourly steps into ramps: planning work drifts (60-minute moving average); wedding
    # load moves faster (15 minutes) and has its rush: everyone on site at once.
    planning = _smooth(planning, 60)
    wedding = _smooth(wedding, 15)
    wedding = wedding * (1 + model.rush_height * model.rush(np.arange(minutes) % 1440))
    noise = np.empty(minutes)
    level = 0.0
    scale = jitter * math.sqrt(1 - persistence**2)
    shocks = rng.normal(0.0, scale, minutes)
    for i in range(minutes):
        level = persistence * level + shocks[i]
        noise[i] = level
    factor = np.exp(noise - jitter**2 / 2)
    mix = MIX_BY_REGIME[Regime.SEASON].shares[PriorityClass.CRITICAL]
    total = (planning + wedding) * factor
    critical = (planning * mix + wedding) * factor
    return Trace(first, total, critical)
