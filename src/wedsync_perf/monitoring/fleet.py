"""The fleet view: every process's windows in Redis, merged on read.

Each process publishes its windows every few seconds in one pipeline: a Redis hash per
aligned window (`RedisKeys.fleet_window`), one field per (instance, series), value the
series' compact bytes. Rewriting a field is idempotent, so the current, still growing
window is simply published again on the next flush. Keys expire after the retention.
All keys of a fleet share its hash tag, so on Redis Cluster a flush or a read is one
pipeline to one node.
Merging is exact (sketches add bin by bin): the fleet p99 is the p99 of every request of
every worker, within the sketch's 1 %.

Every store call goes through a `RedisGuard` (the process's shared breaker, a bound of
`timeout_s` per call) and raises `BackendUnavailable` when Redis does not answer; the
publisher counts that and carries on, readers fall back to this process's windows.

Closed windows also feed a per-day hash of request counts per UTC hour and priority
class (`RedisKeys.fleet_hourly`, kept 400 days): the hour-of-week profile capacity
planning reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from wedsync_perf.background import BackgroundLoop
from wedsync_perf.errors import InvalidValue
from wedsync_perf.keys import RedisKeys
from wedsync_perf.monitoring.recorder import Recorder, Window
from wedsync_perf.monitoring.series import SeriesKey, SeriesStats
from wedsync_perf.redis_guard import RedisGuard

__all__ = ["FleetPublisher", "FleetStore", "RedisLike", "hour_of_week_profile"]

_log = logging.getLogger(__name__)
_SEP = "\x1f"  # field separator: cannot occur in route templates or label values
_HOURLY_TTL_S = 400 * 86400
_MERGED = "_merged"  # instance name of a compacted field


class RedisLike(Protocol):
    """The part of `redis.asyncio.Redis` the fleet store (and the alert lease) uses."""

    def pipeline(self, transaction: bool = ...) -> Any: ...

    def set(self, *args: Any, **kwargs: Any) -> Any: ...

    def get(self, *args: Any, **kwargs: Any) -> Any: ...

    def pexpire(self, *args: Any, **kwargs: Any) -> Any: ...


class FleetStore:
    """Reads and writes windows of series in Redis."""

    def __init__(
        self,
        redis: RedisLike,
        *,
        edges: Sequence[float],
        window_s: float,
        retention_s: float,
        keys: RedisKeys,
        fleet: str = "default",
        instance_id: str | None = None,
        settle_s: float = 30.0,
        guard: RedisGuard | None = None,
        timeout_s: float = 1.0,
    ) -> None:
        """`guard`: the process's shared one (else the store's own, over `redis`);
        `timeout_s` bounds each call, a flush or a read of the view."""
        self.redis = redis
        self.guard = guard or RedisGuard(redis)
        self.timeout_s = timeout_s
        self.settle_s = settle_s
        self.edges = tuple(edges)
        self.window_s = window_s
        self.retention_s = retention_s
        self.keys = keys
        self.fleet = fleet
        self.instance_id = instance_id or uuid.uuid4().hex[:12]

    def window_key(self, start: float) -> str:
        return self.keys.fleet_window(self.fleet, start)

    def hourly_key(self, day: str) -> str:
        return self.keys.fleet_hourly(self.fleet, day)

    def lease_key(self) -> str:
        """The alert lease of this fleet (see `AlertEvaluator`)."""
        return self.keys.alert_lease(self.fleet)

    async def publish(self, windows: Sequence[Window], closed: Sequence[Window] = ()) -> int:
        """Write `windows` (overwriting this instance's fields) in one pipeline, and add
        each of `closed` (windows seen closed for the first time) to the hourly profile.
        Returns the number of fields written."""
        pipe = self.redis.pipeline(transaction=False)
        fields = 0
        expire_s = int(self.retention_s + 2 * self.window_s)
        for window in windows:
            if not window.series:
                continue
            mapping = {
                _SEP.join((self.instance_id, *key)): zlib.compress(stats.series_bytes(), 1)
                for key, stats in window.series.items()
            }
            redis_key = self.window_key(window.start)
            pipe.hset(redis_key, mapping=mapping)
            pipe.expire(redis_key, expire_s)
            fields += len(mapping)
        for window in closed:
            moment = datetime.fromtimestamp(window.start, UTC)
            day_key = self.hourly_key(moment.strftime("%Y%m%d"))
            per_class: dict[str, int] = {}
            for series_key, stats in window.series.items():
                priority = series_key.priority
                per_class[priority] = per_class.get(priority, 0) + stats.count
            for priority, count in per_class.items():
                pipe.hincrby(day_key, f"{moment.hour}:{priority}", count)
            if per_class:
                pipe.hincrbyfloat(day_key, f"{moment.hour}:seconds", self.window_s)
                pipe.expire(day_key, _HOURLY_TTL_S)
        if fields or closed:
            await self._execute("fleet flush", pipe)
        return fields

    async def _execute(self, operation: str, pipe: Any) -> Any:
        return await self.guard.call(operation, pipe.execute, timeout_s=self.timeout_s)

    def settled(self, start: float, now: float) -> bool:
        """True once no publisher may still write this window (see `FleetPublisher`)."""
        return start + self.window_s + self.settle_s < now

    def _decode(self, start: float, reply: dict[Any, Any]) -> tuple[Window, int]:
        """Merge one window's fields over instances; also return how many fields it had."""
        series: dict[SeriesKey, SeriesStats] = {}
        for raw_field, raw_value in reply.items():
            field = raw_field.decode() if isinstance(raw_field, bytes) else str(raw_field)
            parts = field.split(_SEP)
            if len(parts) != 5:
                continue  # not written by this version: skip rather than fail a read
            key = SeriesKey(*parts[1:])
            try:
                stats = SeriesStats.from_series_bytes(zlib.decompress(raw_value), self.edges)
            except (ValueError, zlib.error):
                _log.warning("skipping an unreadable fleet series in window %s", start)
                continue
            target = series.get(key)
            if target is None:
                series[key] = stats
            else:
                target.merge(stats)
        return Window(start, series), len(reply)

    async def read(self, since: float, until: float | None = None) -> list[Window]:
        """Windows starting in [since, until], each merged over every instance. Settled
        windows still holding one field per instance are compacted on the way."""
        now = time.time()
        until = now if until is None else until
        starts: list[float] = []
        start = since - (since % self.window_s)
        while start <= until:
            starts.append(start)
            start += self.window_s
        if not starts:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(self.window_key(start))
        replies = await self._execute("fleet read", pipe)
        windows: list[Window] = []
        for start, reply in zip(starts, replies, strict=True):
            if not reply:
                continue
            window, fields = self._decode(start, reply)
            windows.append(window)
            if fields > len(window.series) and self.settled(start, now):
                await self.compact(start)
        return windows

    async def compact(self, start: float) -> bool:
        """Replace a settled window's per-instance fields by one merged field per series.

        Optimistic (WATCH): if anything writes the window meanwhile, nothing changes and
        the next read tries again. Keeps the fleet view's read time flat however many
        short-lived workers wrote to a window. Returns True when it compacted.
        """
        return await self.guard.call(
            "fleet compact", lambda: self._compact(start), timeout_s=self.timeout_s
        )

    async def _compact(self, start: float) -> bool:
        from redis.exceptions import WatchError

        key = self.window_key(start)
        pipe = self.redis.pipeline(transaction=True)
        try:
            await pipe.watch(key)
            reply = await pipe.hgetall(key)
            window, fields = self._decode(start, reply)
            if not reply or fields <= len(window.series):
                await pipe.reset()
                return False
            ttl = await pipe.ttl(key)
            pipe.multi()
            pipe.hdel(key, *reply.keys())
            pipe.hset(
                key,
                mapping={
                    _SEP.join((_MERGED, *series_key)): zlib.compress(stats.series_bytes(), 1)
                    for series_key, stats in window.series.items()
                },
            )
            if ttl and ttl > 0:
                pipe.expire(key, ttl)
            await pipe.execute()
            return True
        except WatchError:
            return False
        finally:
            await pipe.reset()

    async def hourly(self, days: Sequence[str]) -> dict[str, dict[str, float]]:
        """Raw hourly profile for the given `yyyymmdd` days: day → field → value."""
        pipe = self.redis.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(self.hourly_key(day))
        replies = await self._execute("fleet profile", pipe)
        result: dict[str, dict[str, float]] = {}
        for day, reply in zip(days, replies, strict=True):
            result[day] = {
                (k.decode() if isinstance(k, bytes) else str(k)): float(v)
                for k, v in (reply or {}).items()
            }
        return result


def hour_of_week_profile(hourly: dict[str, dict[str, float]]) -> dict[int, dict[str, float]]:
    """Mean requests/s per hour of the week (0 = Monday 00:00 UTC) and priority class,
    from `FleetStore.hourly` output. Hours never observed are absent."""
    sums: dict[int, dict[str, float]] = {}
    seconds: dict[int, float] = {}
    for day, fields in hourly.items():
        weekday = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC).weekday()
        for field, value in fields.items():
            hour_s, _, what = field.partition(":")
            how = weekday * 24 + int(hour_s)
            if what == "seconds":
                seconds[how] = seconds.get(how, 0.0) + value
            else:
                bucket = sums.setdefault(how, {})
                bucket[what] = bucket.get(what, 0.0) + value
    return {
        how: {priority: total / seconds[how] for priority, total in classes.items()}
        for how, classes in sums.items()
        if seconds.get(how)
    }


class FleetPublisher:
    """Publishes a recorder's windows every `interval_s`; Redis trouble is logged, never
    raised into requests."""

    def __init__(self, recorder: Recorder, store: FleetStore, interval_s: float = 5.0) -> None:
        if interval_s <= 0:
            raise InvalidValue("interval_s", interval_s, "a positive number of seconds")
        self.recorder = recorder
        self.store = store
        self.interval_s = interval_s
        self._loop = BackgroundLoop(self._run, "wedsync-perf-fleet-flush")
        self._published_from = 0.0  # start of the oldest window that may still change
        self._closed_seen = 0.0  # newest window already added to the hourly profile
        self.failures = 0
        self.late_windows = 0  # windows dropped because they were published too late
        self.last_error: str | None = None  # why the last flush failed; None once one works

    @property
    def degraded(self) -> bool:
        """True while flushes fail: the fleet view misses this process's recent windows
        (they are published again, if still fresh, once Redis answers)."""
        return self.last_error is not None

    async def flush(self) -> int:
        windows = self.recorder.windows(since=self._published_from)
        if not windows:
            return 0
        # A window readers may compact must never be written again, or its counts would
        # be added twice: publish only windows well inside the settle time.
        now = time.time()
        store = self.store
        fresh = [w for w in windows if w.start + store.window_s + store.settle_s / 2 > now]
        self.late_windows += len(windows) - len(fresh)
        if not fresh:
            return 0
        windows = fresh
        current = windows[-1]
        closed = [w for w in windows[:-1] if w.start > self._closed_seen]
        written = await self.store.publish(windows, closed)
        self._published_from = current.start
        if closed:
            self._closed_seen = closed[-1].start
        return written

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.flush()
            except Exception as exc:  # Redis down or slow: the API must not notice
                self.failures += 1
                self.last_error = type(exc).__name__
                if self.failures in (1, 10) or self.failures % 100 == 0:
                    _log.warning(
                        "fleet flush failed (%d so far): %s", self.failures, type(exc).__name__
                    )
            else:
                self.last_error = None

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """Stop the loop and flush once more, so the last seconds are not lost."""
        await self._loop.stop()
        with contextlib.suppress(Exception):
            await self.flush()
