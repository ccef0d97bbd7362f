"""The wedding calendar: which regime a moment falls in.

Pure and I/O-free: the caller passes the extra wedding dates it knows from the database,
so the same object serves the app, the CLI, the simulator and tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from wedsync_perf.errors import InvalidValue

__all__ = ["Regime", "WeddingCalendar"]

_SATURDAY = 5


class Regime(StrEnum):
    """Operating regime of a moment; objectives and policies tighten left to right."""

    OFF_SEASON = "off_season"
    SEASON = "season"
    WEDDING_DAY = "wedding_day"


@dataclass(frozen=True)
class WeddingCalendar:
    """Season months (inclusive, may wrap the year end) plus known wedding dates."""

    season_start_month: int = 5
    season_end_month: int = 10
    wedding_dates: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name in ("season_start_month", "season_end_month"):
            month = getattr(self, name)
            if not 1 <= month <= 12:
                raise InvalidValue(name, month, "a month number, 1..12")

    def with_wedding_dates(self, dates: Iterable[date]) -> WeddingCalendar:
        """A copy that also treats `dates` as wedding days (e.g. booked in the database)."""
        return WeddingCalendar(
            self.season_start_month, self.season_end_month, self.wedding_dates | frozenset(dates)
        )

    def in_season(self, day: date) -> bool:
        start, end = self.season_start_month, self.season_end_month
        if start <= end:
            return start <= day.month <= end
        return day.month >= start or day.month <= end

    def is_wedding_day(self, day: date) -> bool:
        """A Saturday in season, or any day with weddings booked."""
        return day in self.wedding_dates or (day.weekday() == _SATURDAY and self.in_season(day))

    def regime(self, at: date | datetime) -> Regime:
        day = at.date() if isinstance(at, datetime) else at
        if self.is_wedding_day(day):
            return Regime.WEDDING_DAY
        return Regime.SEASON if self.in_season(day) else Regime.OFF_SEASON
