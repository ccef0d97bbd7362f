"""Read-replica routing that never breaks read-your-writes.

After a write, the primary's WAL position (`pg_current_wal_lsn()`) is recorded for the
tenant in Redis, so every worker process sees it (the scheme Bitbucket described for
its PostgreSQL fleet). A read goes to a replica only when that replica has replayed at
least the tenant's last write position and lags the primary by no more than
`max_lag_s`; otherwise it goes to the primary. Replica positions are polled in the
background, so a routing decision costs one Redis GET and no database round trip; a
polled replay position only grows, so deciding on a slightly old one is conservative,
never wrong.

Lag is measured in time the way it matters for routing: the primary's position is
sampled on each poll, and a replica's lag is how long ago the primary was at the
position the replica has now replayed. An idle primary therefore shows no lag (unlike
`now() - pg_last_xact_replay_timestamp()`, which grows while nothing is written).

Failure handling leans to the primary: Redis unreachable, a replica down, an acquire
on a replica that fails before the request starts — each sends the read to the primary
and is counted by reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from wedsync_perf.background import BackgroundLoop
from wedsync_perf.database.pool import LanedPool
from wedsync_perf.errors import InvalidValue
from wedsync_perf.keys import RedisKeys
from wedsync_perf.priorities import PriorityClass
from wedsync_perf.redis_guard import RedisGuard

__all__ = ["ReplicaRouter", "ReplicaState", "WritePositions"]

_log = logging.getLogger(__name__)

# Keep the larger of the stored and the new position. Positions are fixed-width hex, so
# string order is numeric order (Lua numbers are doubles and would round large LSNs).
_KEEP_MAX = """
local current = redis.call('GET', KEYS[1])
if (not current) or ARGV[1] > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""

FALLBACK_REASONS = ("no_replica", "behind", "lagging", "down", "positions_unavailable", "error")


class WritePositions:
    """Each tenant's last write position, shared by all workers through Redis.

    Keys hold the cluster's system identifier and a tenant id only (no personal data).
    The identifier survives a failover (a promoted standby keeps it and its positions
    keep growing) but not a new cluster, whose positions start again from zero and
    must not be compared with the old ones. `ttl_s` bounds memory for tenants that stop
    writing; it must exceed any lag a replica may have and still be used, which
    `ReplicaRouter` checks against its `max_lag_s`.

    Both calls go through `guard` (the process's shared breaker and per-call bound;
    unset, one of their own) and raise `BackendUnavailable` when Redis does not answer:
    the router then reads from the primary.
    """

    def __init__(
        self,
        redis: Any,
        *,
        keys: RedisKeys,
        ttl_s: int = 86_400,
        guard: RedisGuard | None = None,
    ) -> None:
        self.redis = redis
        self.guard = guard or RedisGuard(redis)
        self.keys = keys
        self.ttl_s = ttl_s
        self.cluster: str | None = None  # the primary's, read by ReplicaRouter.refresh()
        self._keep_max = redis.register_script(_KEEP_MAX)

    def _key(self, tenant: int) -> str:
        if self.cluster is None:
            raise RuntimeError("the primary's system identifier is not known yet")
        return self.keys.write_position(self.cluster, tenant)

    async def record(self, tenant: int, lsn: int) -> None:
        key = self._key(tenant)
        await self.guard.call(
            "write position", lambda: self._keep_max(keys=[key], args=[f"{lsn:016x}", self.ttl_s])
        )

    async def last(self, tenant: int) -> int | None:
        key = self._key(tenant)
        raw = await self.guard.call("read position", lambda: self.redis.get(key))
        return None if raw is None else int(raw, 16)


@dataclass
class ReplicaState:
    name: str
    pool: LanedPool
    replay_lsn: int = 0
    lag_s: float = float("inf")
    healthy: bool = False
    last_error: str | None = None
    reads: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "lag_s": None if self.lag_s == float("inf") else round(self.lag_s, 3),
            "reads": self.reads,
            "in_use": self.pool.in_use,
            "last_error": self.last_error,
        }


@dataclass
class _Counters:
    primary_reads: int = 0
    writes: int = 0
    fallbacks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FALLBACK_REASONS, 0))


class ReplicaRouter:
    """Reads to a caught-up replica, writes (and everything else) to the primary.

    `read()` and `write()` are async context managers yielding a pooled connection. With
    no replicas configured both are the primary's `acquire()` and nothing is recorded.
    """

    def __init__(
        self,
        primary: LanedPool,
        replicas: Mapping[str, LanedPool],
        positions: WritePositions | None,
        *,
        max_lag_s: float = 5.0,
        poll_interval_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if replicas and positions is None:
            raise InvalidValue(
                "positions",
                None,
                "WritePositions (Redis) with replicas: they keep read-your-writes",
            )
        if positions is not None and positions.ttl_s <= max_lag_s:
            raise InvalidValue(
                "WritePositions.ttl_s", positions.ttl_s, f"more than max_lag_s ({max_lag_s:g} s)"
            )
        if max_lag_s <= 0:
            raise InvalidValue("max_lag_s", max_lag_s, "a positive number of seconds")
        if poll_interval_s <= 0:
            raise InvalidValue("poll_interval_s", poll_interval_s, "a positive number of seconds")
        self.primary = primary
        self.replicas = [ReplicaState(name, pool) for name, pool in replicas.items()]
        self.positions = positions
        self.max_lag_s = max_lag_s
        self.poll_interval_s = poll_interval_s
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()  # (when, primary position)
        self.counters = _Counters()
        self._unrecorded: dict[int, float] = {}  # tenant -> primary-only until
        self._loop = BackgroundLoop(self._poll_forever, "wedsync-perf-replica-poll")

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Take a first reading (so the first reads can use replicas) and keep polling."""
        if self.replicas:
            await self.refresh()
            self._loop.start()

    async def close(self) -> None:
        await self._loop.stop()
        for replica in self.replicas:
            await replica.pool.close()

    # -- routing ---------------------------------------------------------------------

    @asynccontextmanager
    async def read(
        self, tenant: int, priority: PriorityClass = PriorityClass.STANDARD
    ) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        async with AsyncExitStack() as stack:
            connection = await self._replica_connection(stack, tenant, priority)
            if connection is None:
                self.counters.primary_reads += 1
                connection = await stack.enter_async_context(self.primary.acquire(priority))
            yield connection

    @asynccontextmanager
    async def write(
        self, tenant: int, priority: PriorityClass = PriorityClass.STANDARD
    ) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        """The primary. When the block ends — cleanly or not, since a block can fail
        after its transaction committed — the tenant's write position is recorded on
        the same connection."""
        async with self.primary.acquire(priority) as connection:
            try:
                yield connection
            finally:
                self.counters.writes += 1
                if self.replicas:
                    await self._record(tenant, connection)

    async def _record(self, tenant: int, connection: PoolConnectionProxy[asyncpg.Record]) -> None:
        assert self.positions is not None  # checked in __init__
        try:
            lsn = await connection.fetchval("SELECT pg_current_wal_lsn()")
            await self.positions.record(tenant, int(lsn))
        except Exception as exc:
            # Position unknown: other workers may route this tenant to a stale replica
            # until replicas pass it; this worker at least keeps it on the primary.
            self.counters.fallbacks["error"] += 1
            self._unrecorded[tenant] = self._clock() + self.positions.ttl_s
            _log.warning("replica routing: write position not recorded (%s)", type(exc).__name__)

    async def _replica_connection(
        self, stack: AsyncExitStack, tenant: int, priority: PriorityClass
    ) -> PoolConnectionProxy[asyncpg.Record] | None:
        if not self.replicas:
            return None
        assert self.positions is not None  # checked in __init__
        if self._unrecorded and self._unrecorded.get(tenant, 0.0) > self._clock():
            self.counters.fallbacks["behind"] += 1
            return None
        try:
            written = await self.positions.last(tenant)
        except Exception:  # Redis down, or the primary not yet identified: no proof
            self.counters.fallbacks["positions_unavailable"] += 1
            return None
        replica, reason = self.choose(written)
        if replica is None:
            self.counters.fallbacks[reason] += 1
            return None
        try:
            connection = await stack.enter_async_context(replica.pool.acquire(priority))
        except Exception as exc:  # the request has not started: the primary serves it
            replica.healthy = False
            replica.last_error = type(exc).__name__
            self.counters.fallbacks["error"] += 1
            return None
        replica.reads += 1
        return connection

    def choose(self, written: int | None) -> tuple[ReplicaState | None, str]:
        """The least busy replica that is up, within the lag bound and past `written`;
        else None and the reason the primary serves the read."""
        reason = "no_replica"
        best: ReplicaState | None = None
        for replica in self.replicas:
            if not replica.healthy:
                reason = "down" if reason == "no_replica" else reason
                continue
            if replica.lag_s > self.max_lag_s:
                reason = "lagging" if reason in ("no_replica", "down") else reason
                continue
            if written is not None and replica.replay_lsn < written:
                reason = "behind"
                continue
            if best is None or replica.pool.in_use < best.pool.in_use:
                best = replica
        return best, ("" if best is not None else reason)

    # -- positions -------------------------------------------------------------------

    async def refresh(self) -> None:
        """Sample the primary's position, then each replica's replay position and lag."""
        now = self._clock()
        assert self.positions is not None  # refresh is only meaningful with replicas
        try:
            async with self.primary.acquire(PriorityClass.CRITICAL) as conn:
                if self.positions.cluster is None:
                    self.positions.cluster = str(
                        await conn.fetchval("SELECT system_identifier FROM pg_control_system()")
                    )
                self._samples.append((now, int(await conn.fetchval("SELECT pg_current_wal_lsn()"))))
        except Exception as exc:
            _log.warning("replica routing: primary position unavailable (%s)", type(exc).__name__)
        horizon = now - max(self.max_lag_s * 4, 60.0)
        while len(self._samples) > 1 and self._samples[1][0] < horizon:
            self._samples.popleft()  # keep one sample older than any lag we care about
        await asyncio.gather(*(self._refresh_replica(r) for r in self.replicas))

    async def _refresh_replica(self, replica: ReplicaState) -> None:
        try:
            async with replica.pool.acquire(PriorityClass.CRITICAL) as conn:
                replayed = await conn.fetchval("SELECT pg_last_wal_replay_lsn()")
        except Exception as exc:
            replica.healthy = False
            replica.last_error = type(exc).__name__
            return
        if replayed is None:  # not in recovery: a promoted or misconfigured "replica"
            replica.healthy = False
            replica.last_error = "not a standby"
            return
        replica.replay_lsn = max(replica.replay_lsn, int(replayed))
        replica.lag_s = self._lag(replica.replay_lsn)
        replica.healthy = True
        replica.last_error = None

    def _lag(self, replayed: int) -> float:
        """How long ago the primary was at `replayed` (0 if at or past the newest sample)."""
        if not self._samples:
            return float("inf")
        newest_time = self._samples[-1][0]
        caught_up_to: float | None = None
        for when, position in reversed(self._samples):
            if position <= replayed:
                caught_up_to = when
                break
        if caught_up_to is None:  # behind every sample we still hold
            return self._clock() - self._samples[0][0]
        return 0.0 if caught_up_to == newest_time else self._clock() - caught_up_to

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self.refresh()
            except Exception:  # keep polling; the next round may succeed
                _log.exception("replica routing: refresh failed")

    def report(self) -> dict[str, Any]:
        return {
            "replicas": {r.name: r.as_dict() for r in self.replicas},
            "primary_reads": self.counters.primary_reads,
            "writes": self.counters.writes,
            "fallbacks": dict(self.counters.fallbacks),
            "max_lag_s": self.max_lag_s,
        }
