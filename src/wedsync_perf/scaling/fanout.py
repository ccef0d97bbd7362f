"""Call N vendor systems at once under one deadline, hedge a slow call once, and return
what came back — with a status per vendor — instead of failing the whole request.

On a wedding day the vendor list must answer even when one florist's system is slow:
`fan_out` gives every call the same deadline, starts a second copy of any call still
running after `hedge_after_s` (the first answer wins, the other is cancelled — "The
Tail at Scale"'s hedged request), and reports `ok`, `error` or `timeout` per vendor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from wedsync_perf.errors import InvalidValue

__all__ = ["FanOutResult", "VendorOutcome", "fan_out"]

T = TypeVar("T")


@dataclass(frozen=True)
class VendorOutcome(Generic[T]):
    status: Literal["ok", "error", "timeout"]
    value: T | None = None
    error: str | None = None  # exception type only: messages can carry hosts or URLs
    hedged: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class FanOutResult(Generic[T]):
    outcomes: Mapping[str, VendorOutcome[T]]

    @property
    def complete(self) -> bool:
        return all(o.status == "ok" for o in self.outcomes.values())

    def values(self) -> dict[str, T]:
        return {
            k: o.value for k, o in self.outcomes.items() if o.status == "ok" and o.value is not None
        }


async def _hedged(call: Callable[[], Awaitable[T]], hedge_after_s: float | None) -> tuple[T, bool]:
    first = asyncio.ensure_future(call())
    if hedge_after_s is None:
        return await first, False
    started, _ = await asyncio.wait({first}, timeout=hedge_after_s)
    if started:
        return first.result(), False
    second = asyncio.ensure_future(call())
    pending: set[asyncio.Future[T]] = {first, second}
    try:
        while pending:
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in finished:
                if future.exception() is None:
                    return future.result(), future is second
        # both failed: report the original call's error
        return first.result(), False
    finally:
        for future in (first, second):
            if not future.done():
                future.cancel()


async def fan_out(
    calls: Mapping[str, Callable[[], Awaitable[T]]],
    *,
    deadline_s: float,
    hedge_after_s: float | None = None,
) -> FanOutResult[T]:
    """Run every call concurrently; after `deadline_s`, unfinished ones are cancelled
    and reported as `timeout`."""
    if deadline_s <= 0:
        raise InvalidValue("deadline_s", deadline_s, "a positive number of seconds")
    started = time.perf_counter()

    async def one(name: str, call: Callable[[], Awaitable[T]]) -> tuple[str, VendorOutcome[T]]:
        try:
            async with asyncio.timeout(deadline_s):
                value, hedged = await _hedged(call, hedge_after_s)
            return name, VendorOutcome(
                "ok", value, hedged=hedged, seconds=time.perf_counter() - started
            )
        except TimeoutError:
            return name, VendorOutcome("timeout", seconds=time.perf_counter() - started)
        except Exception as exc:  # one vendor's failure is that vendor's status
            return name, VendorOutcome(
                "error", error=type(exc).__name__, seconds=time.perf_counter() - started
            )

    results = await asyncio.gather(*(one(name, call) for name, call in calls.items()))
    return FanOutResult(dict(results))
