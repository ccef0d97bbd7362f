"""`LanedPool`: an asyncpg pool with priority lanes and the figures to size it.

Lanes: `reserved_critical` connections can only be taken by critical requests, and
bulk work may hold at most `max_bulk` at once — so an import can saturate its lane but
never the wedding day's timeline. Waiters are served critical first, then standard,
then bulk, each in arrival order. An acquire that waits longer than its timeout raises
`PoolTimeout` (HTTP 503 hint): a request gets an answer, never a hang.

Figures (cheap counters on the request path, sketches for waits): acquire-wait
quantiles per class, in use, waiting per class, timeouts, and a Little's-law sizing
advice from measured concurrency and hold times.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from wedsync_perf.database.errors import breaks_connection, fault_of
from wedsync_perf.errors import InvalidValue, WedsyncPerfError
from wedsync_perf.monitoring.sketch import LatencySketch
from wedsync_perf.priorities import PriorityClass

__all__ = ["LanedPool", "PoolStats", "PoolTimeout"]

_log = logging.getLogger(__name__)
_ORDER = (PriorityClass.CRITICAL, PriorityClass.STANDARD, PriorityClass.BULK)


def _raw(connection: PoolConnectionProxy[asyncpg.Record]) -> asyncpg.Connection:
    """The connection behind asyncpg's per-acquire proxy: stable across acquires."""
    raw: asyncpg.Connection = connection._con  # type: ignore[attr-defined]  # None once released
    return raw


class PoolTimeout(WedsyncPerfError):
    """No connection within the acquire timeout: answer 503 and let the client retry."""

    http_status = 503

    def __init__(self, priority: PriorityClass, waited_s: float) -> None:
        super().__init__(
            f"no database connection for a {priority.value} request in {waited_s:.2f} s"
        )
        self.priority = priority


@dataclass
class PoolStats:
    acquire_wait: dict[PriorityClass, LatencySketch]
    acquired: dict[PriorityClass, int]
    timeouts: dict[PriorityClass, int]
    hold_s_total: float = 0.0
    released: int = 0


class LanedPool:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        size: int,
        reserved_critical: int = 2,
        max_bulk: int | None = None,
        acquire_timeout_s: float = 2.0,
        validate_idle_s: float = 1.0,
        statement_timeout_s: Mapping[PriorityClass, float] | None = None,
        release_timeout_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`validate_idle_s`: a connection idle at least this long is pinged before it
        is handed out (one round trip), so a server restart or a killed backend is
        noticed by the pool, not by a request. 0 validates every acquire.

        `statement_timeout_s`: a server-side `statement_timeout` for the lanes named,
        set when one of their connections is handed out (one round trip) — the bulk
        lane's longer bound; other lanes keep the connection's session default.
        `release_timeout_s` bounds asyncpg's reset on release; a connection whose reset
        does not finish in time is terminated."""
        if size < 1:
            raise InvalidValue("size", size, "at least 1 connection")
        if not 0 <= reserved_critical < size:
            raise InvalidValue(
                "reserved_critical", reserved_critical, f"0 <= reserved_critical < size ({size})"
            )
        self.pool = pool
        self.size = size
        self.reserved_critical = reserved_critical
        self.max_bulk = (
            max_bulk if max_bulk is not None else max(1, (size - reserved_critical) // 2)
        )
        if not 1 <= self.max_bulk <= size - reserved_critical:
            raise InvalidValue(
                "max_bulk",
                self.max_bulk,
                f"1 <= max_bulk <= size - reserved_critical ({size - reserved_critical})",
            )
        self.acquire_timeout_s = acquire_timeout_s
        self.validate_idle_s = validate_idle_s
        self.statement_timeout_s = dict(statement_timeout_s or {})
        self.release_timeout_s = release_timeout_s
        self._clock = clock
        self._last_used: dict[int, float] = {}
        self.connections_lost = 0
        self.in_use = 0
        self.in_use_bulk = 0
        self._waiters: dict[PriorityClass, deque[asyncio.Future[None]]] = {
            p: deque() for p in _ORDER
        }
        self.stats = PoolStats(
            acquire_wait={p: LatencySketch() for p in _ORDER},
            acquired=dict.fromkeys(_ORDER, 0),
            timeouts=dict.fromkeys(_ORDER, 0),
        )
        self.peak_in_use = 0
        self._started = clock()
        self._enqueued: dict[asyncio.Future[None], float] = {}
        self._holds: dict[object, tuple[PriorityClass, float]] = {}  # -> (lane, since)

    # -- lanes --------------------------------------------------------------------

    def _fits(self, priority: PriorityClass) -> bool:
        if priority is PriorityClass.CRITICAL:
            return self.in_use < self.size
        if self.in_use >= self.size - self.reserved_critical:
            return False
        return priority is not PriorityClass.BULK or self.in_use_bulk < self.max_bulk

    def _take(self, priority: PriorityClass) -> None:
        self.in_use += 1
        if priority is PriorityClass.BULK:
            self.in_use_bulk += 1
        self.peak_in_use = max(self.peak_in_use, self.in_use)

    def _give_back(self, priority: PriorityClass) -> None:
        self.in_use -= 1
        if priority is PriorityClass.BULK:
            self.in_use_bulk -= 1
        self._wake()

    def _wake(self) -> None:
        for priority in _ORDER:  # most important first
            queue = self._waiters[priority]
            while queue and self._fits(priority):
                waiter = queue.popleft()
                if not waiter.done():
                    self._take(priority)
                    waiter.set_result(None)

    async def _slot(self, priority: PriorityClass, timeout_s: float) -> None:
        if self._fits(priority) and not any(
            self._waiters[p] for p in _ORDER[: _ORDER.index(priority) + 1]
        ):
            self._take(priority)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[priority].append(waiter)
        self._enqueued[waiter] = self._clock()
        try:
            async with asyncio.timeout(timeout_s):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                self._give_back(priority)  # granted in the same instant: hand it on
            self.stats.timeouts[priority] += 1
            raise PoolTimeout(priority, timeout_s) from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._give_back(priority)
            raise
        finally:
            self._enqueued.pop(waiter, None)
            if not waiter.done():
                waiter.cancel()
            queue = self._waiters[priority]
            if waiter in queue:
                queue.remove(waiter)

    # -- public -------------------------------------------------------------------

    @asynccontextmanager
    async def acquire(
        self, priority: PriorityClass = PriorityClass.STANDARD, timeout_s: float | None = None
    ) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        """A connection in `priority`'s lane; raises `PoolTimeout` after `timeout_s`.

        Whatever ends the block (an error, a lost connection, cancellation), the
        connection and the lane slot are given back exactly once and the block's own
        error is what propagates: a connection that failed or closed is terminated,
        never handed out again."""
        started = self._clock()
        timeout = self.acquire_timeout_s if timeout_s is None else timeout_s
        await self._slot(priority, timeout)
        hold = object()
        try:
            connection, raw = await self._healthy_connection(priority, started, timeout)
            got = self._clock()
            self._holds[hold] = (priority, got)
            self.stats.acquire_wait[priority].add(got - started)
            self.stats.acquired[priority] += 1
            broken = False
            try:
                bound = self.statement_timeout_s.get(priority)
                if bound is not None:
                    # Undone on release: asyncpg's reset runs RESET ALL.
                    await connection.execute(f"SET statement_timeout = {int(bound * 1000)}")
                yield connection
            except BaseException as exc:
                broken = breaks_connection(exc)
                raise
            finally:
                self.stats.hold_s_total += self._clock() - got
                self.stats.released += 1
                await self._release(connection, raw, broken)
        finally:
            self._holds.pop(hold, None)
            self._give_back(priority)

    async def _healthy_connection(
        self, priority: PriorityClass, started: float, budget_s: float
    ) -> tuple[PoolConnectionProxy[asyncpg.Record], asyncpg.Connection]:
        for _ in range(self.size + 1):
            remaining = max(0.001, budget_s - (self._clock() - started))
            try:
                connection = await self.pool.acquire(timeout=remaining)
            except TimeoutError:
                self.stats.timeouts[priority] += 1
                raise PoolTimeout(priority, budget_s) from None
            raw = _raw(connection)
            idle = self._clock() - self._last_used.get(id(raw), 0.0)
            if idle < self.validate_idle_s:
                return connection, raw
            try:
                await connection.fetchval("SELECT 1", timeout=min(remaining, 1.0))
                return connection, raw
            except BaseException as exc:
                await self._release(connection, raw, broken=True)
                if fault_of(exc) is None and not isinstance(exc, TimeoutError):
                    raise
        raise PoolTimeout(priority, budget_s)

    async def _release(
        self, connection: PoolConnectionProxy[asyncpg.Record], raw: asyncpg.Connection, broken: bool
    ) -> None:
        """Give `connection` back; never raises. `raw` is taken at acquire: the proxy
        detaches (and refuses every call) once the connection has closed under it."""
        if not broken and not raw.is_closed():
            # Stamped before the release: asyncpg may hand the connection to the next
            # acquire before this coroutine resumes, which must not ping it again.
            self._last_used[id(raw)] = self._clock()
            try:
                await self.pool.release(connection, timeout=self.release_timeout_s)
                return
            except Exception as exc:  # reset failed or timed out: asyncpg terminated it
                _log.debug("connection reset failed on release: %s", type(exc).__name__)
        self.connections_lost += 1
        self._last_used.pop(id(raw), None)
        # Idempotent, and it puts the pool's holder back (the pool reconnects later).
        raw.terminate()

    async def fetchval(
        self, sql: str, *args: Any, priority: PriorityClass = PriorityClass.CRITICAL
    ) -> Any:
        async with self.acquire(priority) as conn:
            return await conn.fetchval(sql, *args)

    async def fetch(
        self, sql: str, *args: Any, priority: PriorityClass = PriorityClass.STANDARD
    ) -> list[asyncpg.Record]:
        async with self.acquire(priority) as conn:
            return list(await conn.fetch(sql, *args))

    async def close(self, timeout_s: float = 5.0) -> None:
        """Close gracefully within `timeout_s`, then terminate what is still held: a
        connection stuck in a hung statement must not keep the process from exiting."""
        try:
            await asyncio.wait_for(self.pool.close(), timeout_s)
        except TimeoutError:
            self.pool.terminate()  # asyncpg has terminated on the cancellation already

    def held_longer_than(self, priority: PriorityClass, seconds: float) -> int:
        """How many of `priority`'s slots have been held more than `seconds`."""
        cutoff = self._clock() - seconds
        return sum(1 for p, since in self._holds.values() if p is priority and since < cutoff)

    @property
    def closed(self) -> bool:
        """Closed or closing: no connection will be handed out again."""
        return bool(self.pool.is_closing())

    def queueing_delay_s(self) -> float:
        """How long the oldest critical or standard waiter has waited: a standing queue
        for connections, which admission control steers by (`AdmissionController`'s
        `delay_signals`). Bulk waiting on its own capped lane is the lane working."""
        now = self._clock()
        heads = [self._enqueued.get(self._waiters[p][0], now)
                 for p in (PriorityClass.CRITICAL, PriorityClass.STANDARD) if self._waiters[p]]  # fmt: skip
        return now - min(heads) if heads else 0.0

    def waiting(self) -> dict[str, int]:
        return {p.value: len(q) for p, q in self._waiters.items()}

    def advice(self) -> dict[str, float]:
        """Little's law: connections needed = arrival rate × mean hold time; sized for
        the peak seen, with 30 % headroom, next to the configured size."""
        elapsed = max(self._clock() - self._started, 1e-9)
        acquired = sum(self.stats.acquired.values())
        rate = acquired / elapsed
        hold = self.stats.hold_s_total / self.stats.released if self.stats.released else 0.0
        mean_busy = rate * hold
        needed = max(self.peak_in_use, mean_busy)
        return {
            "configured_size": self.size,
            "acquires_per_s": round(rate, 2),
            "mean_hold_ms": round(hold * 1000, 3),
            "mean_in_use": round(mean_busy, 2),
            "peak_in_use": self.peak_in_use,
            "suggested_size": max(self.reserved_critical + 1, math.ceil(needed * 1.3)),
        }
