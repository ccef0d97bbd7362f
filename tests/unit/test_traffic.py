from __future__ import annotations

import random
from collections import Counter

import pytest

from wedsync_perf.calendar import Regime
from wedsync_perf.priorities import PriorityClass
from wedsync_perf.traffic import MIX_BY_REGIME, ClassMix


def test_shares_must_sum_to_one() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        ClassMix({PriorityClass.CRITICAL: 0.5, PriorityClass.BULK: 0.4})


def test_negative_share_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        ClassMix({PriorityClass.CRITICAL: 1.5, PriorityClass.BULK: -0.5})


def test_pick_follows_the_shares() -> None:
    mix = MIX_BY_REGIME[Regime.WEDDING_DAY]
    rng = random.Random(1)
    drawn = Counter(mix.pick(rng) for _ in range(20_000))
    for priority, share in mix.shares.items():
        assert drawn[priority] / 20_000 == pytest.approx(share, abs=0.02)


def test_wedding_day_is_mostly_critical() -> None:
    day = MIX_BY_REGIME[Regime.WEDDING_DAY]
    winter = MIX_BY_REGIME[Regime.OFF_SEASON]
    assert day.rate(100, PriorityClass.CRITICAL) > winter.rate(100, PriorityClass.CRITICAL)
