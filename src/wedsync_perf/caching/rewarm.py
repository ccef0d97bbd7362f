"""Warming again what a cache loss took: a Redis that restarts comes back empty, and
on a wedding day the first requests after it would all go to the database at once.

Beside each warmed day the cache holds a marker entry. Every `interval_s` the watch
asks the backend (not the local tier, which outlives a Redis restart) whether each
marker is still there; one that is gone means the backend lost what was warmed, and
the day is warmed again — through the app's own warmer, at its own gentle pace — then
marked. While the backend does not answer, nothing is decided. Days in the past are
forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date

from wedsync_perf.background import BackgroundLoop
from wedsync_perf.caching.cache import Cache
from wedsync_perf.errors import InvalidValue

__all__ = ["RewarmWatch"]

_log = logging.getLogger(__name__)
_MARKER_TTL_S = 3 * 86_400.0  # outlives the day in any timezone


class RewarmWatch:
    def __init__(
        self,
        cache: Cache,
        warm: Callable[[date], Awaitable[object]],
        *,
        interval_s: float = 5.0,
        today: Callable[[], date] = date.today,
    ) -> None:
        """`warm(day)` fills the cache for `day` (rate-limited: it runs beside live
        traffic); `today` is the date that decides which days are over."""
        if interval_s <= 0:
            raise InvalidValue("interval_s", interval_s, "a positive number of seconds")
        self.cache = cache
        self.interval_s = interval_s
        self._warm = warm
        self.today = today
        self._days: set[date] = set()
        self.rewarms = 0  # days warmed again after a loss
        self._loop = BackgroundLoop(self._watch, "wedsync-perf-rewarm")

    @property
    def days(self) -> frozenset[date]:
        return frozenset(self._days)

    async def warmed(self, day: date) -> None:
        """`day` has just been warmed: watch it from now on."""
        self._days.add(day)
        await self.cache.set(_marker(day), 1, tenant=None, ttl_s=_MARKER_TTL_S)

    async def check(self) -> list[date]:
        """One look: the days warmed again because their marker was gone."""
        today = self.today()
        rewarmed: list[date] = []
        for day in sorted(self._days):
            if day < today:
                self._days.discard(day)
                continue
            if await self.cache.stored(_marker(day), tenant=None) is not False:
                continue  # present, or the backend cannot say now
            _log.warning("the cache lost %s's warmed entries: warming it again", day)
            await self._warm(day)
            await self.warmed(day)
            self.rewarms += 1
            rewarmed.append(day)
        return rewarmed

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except Exception:  # a failed warm is retried at the next look, never fatal
                _log.warning("re-warming the cache failed", exc_info=True)


def _marker(day: date) -> str:
    return f"warmed:{day.isoformat()}"
