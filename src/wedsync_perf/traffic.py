"""The shape of WedSync traffic: which priority classes arrive, and how much, when.

The demo's load driver uses the class mix; the autoscaling work extends the same model
into full traces (diurnal, weekly and seasonal shape). Shares were chosen from how the
product is used: on a wedding Saturday most traffic is suppliers on site reading the
timeline and checking in; on a winter weekday it is planning and onboarding.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from types import MappingProxyType

from wedsync_perf.calendar import Regime
from wedsync_perf.errors import InvalidValue
from wedsync_perf.priorities import PriorityClass

__all__ = ["MIX_BY_REGIME", "ClassMix"]


@dataclass(frozen=True)
class ClassMix:
    """Fractions of requests per priority class; they must sum to 1."""

    shares: Mapping[PriorityClass, float]
    _classes: tuple[PriorityClass, ...] = field(init=False, repr=False, compare=False)
    _cum: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        negative = {str(c): v for c, v in self.shares.items() if v < 0}
        if negative:
            raise InvalidValue("shares", negative, "non-negative fractions of requests")
        total = sum(self.shares.values())
        if abs(total - 1.0) > 1e-9:
            raise InvalidValue("sum(shares)", total, "fractions that sum to 1")
        object.__setattr__(self, "shares", MappingProxyType(dict(self.shares)))
        classes = tuple(self.shares)
        object.__setattr__(self, "_classes", classes)
        object.__setattr__(self, "_cum", tuple(accumulate(self.shares[c] for c in classes)))

    def pick(self, rng: random.Random) -> PriorityClass:
        """Draw one class; O(number of classes)."""
        return rng.choices(self._classes, cum_weights=self._cum)[0]

    def rate(self, total_rps: float, priority: PriorityClass) -> float:
        return total_rps * self.shares.get(priority, 0.0)


MIX_BY_REGIME: Mapping[Regime, ClassMix] = MappingProxyType(
    {
        Regime.WEDDING_DAY: ClassMix(
            {PriorityClass.CRITICAL: 0.55, PriorityClass.STANDARD: 0.40, PriorityClass.BULK: 0.05}
        ),
        Regime.SEASON: ClassMix(
            {PriorityClass.CRITICAL: 0.15, PriorityClass.STANDARD: 0.75, PriorityClass.BULK: 0.10}
        ),
        Regime.OFF_SEASON: ClassMix(
            {PriorityClass.CRITICAL: 0.05, PriorityClass.STANDARD: 0.80, PriorityClass.BULK: 0.15}
        ),
    }
)
