from __future__ import annotations

from datetime import date, datetime

import pytest

from wedsync_perf.calendar import Regime, WeddingCalendar


def test_saturday_in_season_is_a_wedding_day() -> None:
    cal = WeddingCalendar()
    assert cal.regime(date(2026, 6, 13)) is Regime.WEDDING_DAY  # Saturday
    assert cal.regime(date(2026, 6, 10)) is Regime.SEASON  # Wednesday
    assert cal.regime(date(2026, 1, 10)) is Regime.OFF_SEASON  # Saturday, winter


def test_booked_day_out_of_season_is_a_wedding_day() -> None:
    cal = WeddingCalendar().with_wedding_dates([date(2026, 12, 31)])
    assert cal.regime(datetime(2026, 12, 31, 15, 0)) is Regime.WEDDING_DAY
    assert cal.regime(date(2026, 12, 30)) is Regime.OFF_SEASON


def test_season_may_wrap_the_year_end() -> None:
    southern = WeddingCalendar(season_start_month=10, season_end_month=3)
    assert southern.in_season(date(2026, 1, 5))
    assert southern.in_season(date(2026, 11, 5))
    assert not southern.in_season(date(2026, 6, 5))


def test_bad_month_is_rejected() -> None:
    with pytest.raises(ValueError, match="season_end_month"):
        WeddingCalendar(season_end_month=0)
