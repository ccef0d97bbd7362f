"""Where critical requests wait when the instance has no room for them, and how long.

Admission control sheds bulk and standard work at once; critical work waits here
instead, because a wedding-day request is worth a short wait. But when critical work
alone exceeds what the instance serves, an unbounded wait is how every request ends up
timing out. The queue follows Facebook's adaptive LIFO with CoDel ("Fail at Scale",
ACM Queue 13(8), 2015):

* **Normal** (the queue has been empty within the last `interval_s`): first come, first
  served; a waiter is answered 503 after `timeout_s`. A burst is absorbed.
* **Overloaded** (the queue has not been empty for `interval_s`): last come, first
  served, and a waiter is answered 503 once it has waited `overload_wait_s`. The
  newest request still has its client's whole deadline ahead of it; the oldest are the
  likeliest to have been given up on, so they are the ones refused. No queue outlives
  the overload: when arrivals fall back under capacity, nothing old is left to drain.

A finishing request wakes one waiter (`hand_over`), which is then admitted without a
second check; until it runs it is counted in `woken`, so the room it was given is not
given twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from wedsync_perf.errors import InvalidValue

__all__ = ["CriticalQueue"]


@dataclass(slots=True)
class _Waiter:
    since: float
    admitted: asyncio.Future[bool]


def _woken(waiter: _Waiter) -> bool:
    future = waiter.admitted
    return future.done() and not future.cancelled() and future.result()


class CriticalQueue:
    def __init__(
        self,
        *,
        timeout_s: float = 0.5,
        overload_wait_s: float = 0.02,
        interval_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < overload_wait_s <= timeout_s:
            raise InvalidValue(
                "overload_wait_s/timeout_s",
                (overload_wait_s, timeout_s),
                "0 < overload_wait_s <= timeout_s",
            )
        if interval_s <= 0:
            raise InvalidValue("interval_s", interval_s, "a positive number of seconds")
        self.timeout_s = timeout_s
        self.overload_wait_s = overload_wait_s
        self.interval_s = interval_s
        self.clock = clock
        self._waiters: deque[_Waiter] = deque()
        self._busy_since: float | None = None  # when the queue last became non-empty
        self.woken = 0  # handed a slot, not yet running: count them as in flight
        self.expired = 0  # waiters answered 503 (not admitted in time)

    def __len__(self) -> int:
        return len(self._waiters)

    def overloaded(self, now: float | None = None) -> bool:
        if self._busy_since is None:
            return False
        return (self.clock() if now is None else now) - self._busy_since >= self.interval_s

    async def wait(self) -> bool:
        """True when woken to go in, False when the wait ran out. `expire` (called on
        every admission tick) enforces the regime's wait; `timeout_s` also bounds the
        wait by itself, for a queue nobody ticks."""
        now = self.clock()
        waiter = _Waiter(now, asyncio.get_running_loop().create_future())
        if not self._waiters:
            self._busy_since = now
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.timeout_s):
                admitted = await waiter.admitted
        except TimeoutError:
            if not _woken(waiter):
                self._remove(waiter)
                self.expired += 1
                return False
            admitted = True  # woken in the same turn as the timeout: take the room
        except BaseException:  # cancelled: before its turn, or just after being woken
            if _woken(waiter):
                self.woken -= 1
            else:
                self._remove(waiter)
            raise
        if admitted:
            self.woken -= 1
        return admitted

    def hand_over(self) -> bool:
        """Wake one waiter for a freed slot (the newest when overloaded, else the
        oldest); False if none is waiting."""
        self.expire()
        lifo = self.overloaded()
        while self._waiters:
            waiter = self._waiters.pop() if lifo else self._waiters.popleft()
            if not waiter.admitted.done():  # done: cancelled, its task not yet resumed
                self._settle()
                waiter.admitted.set_result(True)
                self.woken += 1
                return True
        self._settle()
        return False

    def expire(self) -> int:
        """Answer, oldest first, every waiter past the wait the current regime allows."""
        now = self.clock()
        limit = self.overload_wait_s if self.overloaded(now) else self.timeout_s
        expired = 0
        while self._waiters and now - self._waiters[0].since >= limit:
            waiter = self._waiters.popleft()
            if not waiter.admitted.done():
                waiter.admitted.set_result(False)
                expired += 1
        self._settle()
        self.expired += expired
        return expired

    def _remove(self, waiter: _Waiter) -> None:
        with contextlib.suppress(ValueError):  # already taken out by expire/hand_over
            self._waiters.remove(waiter)
        self._settle()

    def _settle(self) -> None:
        if not self._waiters:
            self._busy_since = None
