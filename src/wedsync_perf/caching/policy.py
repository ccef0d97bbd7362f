"""What to cache, for how long, and how: one table per data class, wedding-aware.

| data class         | TTL    | stale-while-revalidate | sealed                | wedding-adaptive |
|--------------------|--------|------------------------|-----------------------|------------------|
| supplier_profile   | 1 h    | 10 min                 | yes (email, phone)    | no               |
| supplier_search    | 5 min  | 1 min                  | no                    | no               |
| venue_availability | 30 s   | none                   | no                    | no               |
| wedding            | 5 min  | none                   | yes (couple's names)  | yes              |
| wedding_timeline   | 5 min  | none                   | no                    | yes              |
| wedding_vendors    | 2 min  | none                   | yes (email, phone)    | yes              |
| default            | 1 min  | none                   | no                    | no               |

A sealed class is never stored without a keyring (docs/security.md lists the personal
fields). Every class caps its stored entries at `max_bytes` (2 MiB by default), on
write and on read. A data class the table does not name is an error, never a fallback:
a typo must not store contact details unsealed.

Wedding-adaptive TTLs follow the days before the wedding: long while it is months
away, short in the last week (details churn), and **frozen** in its last 72 hours and
on the day — a long TTL with event-driven invalidation only (every write route
invalidates its tags), so the day's timeline is served from cache however busy the
database is. On a wedding day (the calendar's regime), planning data (profiles,
search) lives twice as long to take load off the database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import MappingProxyType

from wedsync_perf.calendar import Regime, WeddingCalendar
from wedsync_perf.errors import InvalidValue

__all__ = ["DEFAULT_POLICIES", "CachePolicy", "DataPolicy"]

FROZEN_TTL_S = 6 * 3600.0
FREEZE_HOURS = 72
DEFAULT_MAX_BYTES = 2 * 1024 * 1024  # above ResponseCache.max_body_bytes (1 MiB) + base64
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")  # goes into the entry header: no spaces


@dataclass(frozen=True)
class DataPolicy:
    ttl_s: float
    stale_s: float = 0.0  # serve a stale value this long while one refresh runs
    sensitive: bool = False  # seal with AES-GCM
    local: bool = True  # may live in the in-process tier
    early_beta: float = 1.0  # XFetch β; 0 turns probabilistic early refresh off
    wedding_adaptive: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES  # a stored entry, header included

    def __post_init__(self) -> None:
        if self.max_bytes < 64:
            raise InvalidValue("max_bytes", self.max_bytes, "at least 64 bytes")
        if self.ttl_s <= 0:
            raise InvalidValue("ttl_s", self.ttl_s, "a positive number of seconds")
        if self.stale_s < 0:
            raise InvalidValue("stale_s", self.stale_s, "a non-negative number of seconds")
        if self.early_beta < 0:
            raise InvalidValue("early_beta", self.early_beta, "a non-negative factor (0: off)")


DEFAULT_POLICIES: Mapping[str, DataPolicy] = MappingProxyType(
    {
        "supplier_profile": DataPolicy(ttl_s=3600, stale_s=600, sensitive=True),
        "supplier_search": DataPolicy(ttl_s=300, stale_s=60),
        "venue_availability": DataPolicy(ttl_s=30),
        "wedding": DataPolicy(ttl_s=300, sensitive=True, wedding_adaptive=True),
        "wedding_timeline": DataPolicy(ttl_s=300, wedding_adaptive=True),
        "wedding_vendors": DataPolicy(ttl_s=120, sensitive=True, wedding_adaptive=True),
        "default": DataPolicy(ttl_s=60),
    }
)
_PLANNING = frozenset({"supplier_profile", "supplier_search"})


class CachePolicy:
    def __init__(
        self,
        policies: Mapping[str, DataPolicy] = DEFAULT_POLICIES,
        calendar: WeddingCalendar | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if "default" not in policies:
            raise InvalidValue("policies", sorted(policies), "a table with a 'default' data class")
        for name in policies:
            if not isinstance(name, str) or _NAME.fullmatch(name) is None:
                raise InvalidValue("data class", name, "lower-case letters, digits and '_'")
        self.policies = policies
        self.calendar = calendar or WeddingCalendar()
        self.clock = clock

    def of(self, data_class: str) -> DataPolicy:
        """Raises `InvalidValue` for a data class the table does not name."""
        policy = self.policies.get(data_class)
        if policy is None:
            raise InvalidValue(
                "data_class", data_class, "one of " + ", ".join(sorted(self.policies))
            )
        return policy

    def ttl_s(self, data_class: str, wedding_date: date | None = None) -> float:
        policy = self.of(data_class)
        now = datetime.fromtimestamp(self.clock(), UTC)
        if policy.wedding_adaptive and wedding_date is not None:
            return _wedding_ttl(policy.ttl_s, wedding_date, now)
        if data_class in _PLANNING and self.calendar.regime(now) is Regime.WEDDING_DAY:
            return policy.ttl_s * 2
        return policy.ttl_s

    def frozen(self, wedding_date: date, now: datetime | None = None) -> bool:
        """In the last 72 hours before the wedding, or on the day itself."""
        now = now or datetime.fromtimestamp(self.clock(), UTC)
        return _in_freeze(_hours_until(wedding_date, now))

    @property
    def longest_ttl_s(self) -> float:
        """Tag versions must outlive every entry that recorded them."""
        longest = max(p.ttl_s * 2 + p.stale_s for p in self.policies.values())
        return max(longest, FROZEN_TTL_S)


def _hours_until(wedding_date: date, now: datetime) -> float:
    start = datetime(wedding_date.year, wedding_date.month, wedding_date.day, tzinfo=UTC)
    return (start - now).total_seconds() / 3600


def _in_freeze(hours: float) -> bool:
    return -24 < hours <= FREEZE_HOURS


def _wedding_ttl(base: float, wedding_date: date, now: datetime) -> float:
    hours = _hours_until(wedding_date, now)
    if _in_freeze(hours):
        return FROZEN_TTL_S  # frozen: only events invalidate
    if hours <= -24:
        return base * 12  # history: read-mostly
    if hours <= 7 * 24:
        return base / 2  # last-week churn
    if hours > 90 * 24:
        return base * 2
    return base
