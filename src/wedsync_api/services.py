"""Everything the API runs on, in one typed object: built with the app, started and
released by its lifespan through one `AsyncExitStack`.

What needs no I/O (the monitor, the cache, admission control, the rate limiter, the
authenticator) is built with the app, because the pipeline's middleware holds it from
the start. What needs the network (the database pools, replica routing, the vendor
client, the cache's invalidation bus, warming) starts in `start()`, each piece's release
registered the moment it exists: a failure at any point of startup releases everything
started before it, in reverse order.

`WEDSYNC_API_LAYER=off` is decided here, once: no response cache, no query cache (a
pass-through with the same interface), one first-come pool lane, no admission control,
no request deadlines.
The request path has no branch on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as redis_asyncio

from wedsync_api.db import create_pool, database_url, statement_bounds
from wedsync_api.settings import ApiSettings
from wedsync_api.warming import WarmReport, warm_day
from wedsync_perf.caching import Cache, build_cache
from wedsync_perf.caching.http import ResponseCache
from wedsync_perf.caching.metrics import CacheCollector
from wedsync_perf.caching.query import QueryCache
from wedsync_perf.caching.rewarm import RewarmWatch
from wedsync_perf.database import LanedPool
from wedsync_perf.database.metrics import PoolCollector
from wedsync_perf.database.queries import QueryTracker
from wedsync_perf.database.replicas import ReplicaRouter, WritePositions
from wedsync_perf.errors import WedsyncPerfError
from wedsync_perf.keys import RedisKeys
from wedsync_perf.monitoring.alerts import ThresholdRule, windowed_ratio
from wedsync_perf.monitoring.monitor import Monitor
from wedsync_perf.pipeline import ApiKeyAuthenticator, FailureLimit, RateLimiter, RouteTable
from wedsync_perf.pipeline.deadline import Deadlines
from wedsync_perf.priorities import PriorityClass
from wedsync_perf.redis_guard import RedisGuard, guard_from_settings
from wedsync_perf.scaling.admission import AdaptiveLimit, AdmissionController
from wedsync_perf.scaling.balancer import BalancedTransport
from wedsync_perf.scaling.critical_queue import CriticalQueue
from wedsync_perf.scaling.metrics import AdmissionCollector, BalancerCollector
from wedsync_perf.settings import PerfSettings

__all__ = ["NotStarted", "Services"]

_log = logging.getLogger(__name__)


class NotStarted(WedsyncPerfError):
    """A service that exists only while the app runs was asked for before startup."""

    http_status = 503


class Services:
    def __init__(
        self,
        settings: ApiSettings,
        perf: PerfSettings,
        *,
        dsn: str | None = None,
        cache: Cache | None = None,
    ) -> None:
        """`dsn` overrides URL resolution (tests pass a prepared database); `cache`
        replaces the one the settings describe."""
        self.settings = settings
        self.perf = perf
        self._dsn = dsn
        layer_on = settings.layer == "on"
        # One Redis client (bounded pool and timeouts) and one breaker for all its users.
        self.redis_guard: RedisGuard | None = (
            guard_from_settings(
                settings.redis_url, perf, concurrent_requests=settings.admission_initial_limit
            )
            if settings.redis_url
            else None
        )
        self.redis: redis_asyncio.Redis | None = (
            self.redis_guard.client if self.redis_guard else None
        )
        breaker = self.redis_guard.breaker if self.redis_guard else None
        self.keys = RedisKeys(perf.redis_prefix)  # every Redis key and channel
        self.monitor = Monitor(perf, redis=self.redis, guard=self.redis_guard)
        self.cache = (
            cache if cache is not None else build_cache(perf, redis=self.redis, breaker=breaker)
        )
        self.monitor.registry.register(CacheCollector(self.cache))
        self.responses: ResponseCache | None = ResponseCache(self.cache) if layer_on else None
        shared = self.cache if layer_on else None
        self.search_queries = QueryCache(shared, data_class="supplier_search")
        self.availability_queries = QueryCache(shared, data_class="venue_availability")
        self.queries = QueryTracker()  # per-route statements, N+1
        self.statement_bounds = statement_bounds(settings)  # client-side, per lane (s)
        self.monitor.add_section("queries", self.queries.report)
        self.monitor.add_section("query_cache", self._query_cache_figures)
        if self.redis_guard is not None:
            self.monitor.add_section("redis", self._redis_figures)
        self.limiter = RateLimiter(
            settings.rate_limit, settings.redis_url, self.redis, keys=self.keys, breaker=breaker
        )
        self.authenticator = ApiKeyAuthenticator(
            self._lookup_key,
            ttl_s=settings.auth_cache_seconds,
            unknown_ttl_s=settings.auth_unknown_cache_seconds,
        )
        self.auth_failures = FailureLimit(settings.auth_failure_limit)
        self.monitor.add_section("authentication", self._auth_figures)
        self.admission: AdmissionController | None = None
        if settings.admission and layer_on:
            wait_s = settings.admission_critical_wait_ms / 1000
            self.admission = AdmissionController(
                limit=AdaptiveLimit(initial=settings.admission_initial_limit, max_limit=10_000),
                critical_floor=settings.admission_critical_floor,
                queue=CriticalQueue(timeout_s=wait_s, overload_wait_s=min(0.02, wait_s)),
            )
            self.monitor.add_section("admission", self.admission.report)
            self.monitor.registry.register(AdmissionCollector(self.admission))
        self.deadlines: Deadlines | None = None
        if layer_on:
            self.deadlines = deadlines = Deadlines({
                PriorityClass.CRITICAL: settings.deadline_critical_ms / 1000,
                PriorityClass.STANDARD: settings.deadline_standard_ms / 1000,
                PriorityClass.BULK: settings.deadline_bulk_ms / 1000,
            })  # fmt: skip
            self.monitor.add_section("deadlines", lambda: {"expired": deadlines.expired})
        # Readiness reports the disk the data dir is on, which need not exist yet.
        self.data_dir: Path = next(
            (d for d in (perf.data_dir, *perf.data_dir.parents) if d.exists()), Path("/")
        )
        self.routes = RouteTable()  # the app's, once compiled (see create_app)
        self.vendors_client: httpx.AsyncClient | None = None
        self._pool: LanedPool | None = None
        self._router: ReplicaRouter | None = None
        self.rewarm: RewarmWatch | None = None  # while warming is configured

    # -- what exists only while running ----------------------------------------------

    @property
    def pool(self) -> LanedPool:
        if self._pool is None:
            raise NotStarted("the database pool starts with the app's lifespan")
        return self._pool

    @property
    def router(self) -> ReplicaRouter:
        if self._router is None:
            raise NotStarted("replica routing starts with the app's lifespan")
        return self._router

    async def _lookup_key(self, digest: bytes) -> int | None:
        tenant: int | None = await self.pool.fetchval(
            "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", digest
        )
        return tenant

    def _auth_figures(self) -> dict[str, int]:
        return {
            "lookups": self.authenticator.lookups,
            "refused_after_failures": self.auth_failures.refused,
        }

    # -- lifecycle -------------------------------------------------------------------

    async def start(self, stack: AsyncExitStack) -> None:
        """Start everything, registering each release on `stack` as it starts."""
        settings = self.settings
        if self.redis is not None:
            stack.push_async_callback(self.redis.aclose)
        self._pool = pool = await self._laned(self._dsn or database_url(settings, self.perf))
        stack.push_async_callback(pool.close)
        self._register(stack, PoolCollector(pool))
        self.monitor.add_section("pool", lambda: _pool_figures(pool))
        replicas: dict[str, LanedPool] = {}
        for i, url in enumerate(settings.replicas, 1):
            replicas[f"replica-{i}"] = replica = await self._laned(url)
            stack.push_async_callback(replica.close)
        positions = (
            WritePositions(self.redis, keys=self.keys, guard=self.redis_guard) if replicas else None
        )
        self._router = router = ReplicaRouter(
            pool, replicas, positions, max_lag_s=settings.replica_max_lag_ms / 1000
        )
        await router.start()
        stack.push_async_callback(router.close)
        if replicas:
            self.monitor.add_section("replicas", router.report)
        if settings.vendor_urls:  # vendor systems behind the balancer (ejection, budget)
            transport = BalancedTransport(settings.vendor_urls)
            self.vendors_client = httpx.AsyncClient(
                transport=transport, timeout=settings.vendor_deadline_ms / 1000
            )
            stack.push_async_callback(self.vendors_client.aclose)
            self._register(stack, BalancerCollector(transport, upstream="vendors"))
        self._add_alert_rules(pool, router)
        self.monitor.start()
        stack.push_async_callback(self.monitor.stop)
        if self.admission is not None:
            self.admission.add_delay_signal(pool.queueing_delay_s)
            self.admission.watch_loop()
            stack.push_async_callback(self.admission.stop)
        await self.cache.start()
        stack.push_async_callback(self.cache.stop)
        await self._warm(stack)

    def _register(self, stack: AsyncExitStack, collector: Any) -> None:
        self.monitor.registry.register(collector)
        stack.callback(self.monitor.registry.unregister, collector)

    async def _laned(self, dsn: str) -> LanedPool:
        settings = self.settings
        lanes = settings.layer == "on"  # off: one shared pool, first come first served
        return LanedPool(
            await create_pool(dsn, settings),
            size=settings.pool_max_size,
            reserved_critical=settings.pool_reserved_critical if lanes else 0,
            max_bulk=settings.pool_max_bulk if lanes else settings.pool_max_size,
            acquire_timeout_s=settings.pool_acquire_timeout_ms / 1000,
            validate_idle_s=settings.pool_validate_idle_ms / 1000,
            statement_timeout_s={PriorityClass.BULK: settings.bulk_statement_timeout_ms / 1000},
        )

    async def warm(self, day: date, **pace: Any) -> WarmReport:
        """Fill the response cache for `day`'s weddings (`warming.warm_day`'s `pace`:
        rate_per_s, concurrency, progress). Raises `NotStarted` with the layer off."""
        if self.responses is None:
            raise NotStarted("warming needs the response cache (WEDSYNC_API_LAYER=on)")
        return await warm_day(self.pool, self.responses, self.routes, day, **pace)

    async def _warm(self, stack: AsyncExitStack) -> None:
        if self.responses is None:
            return
        settings = self.settings
        if not (settings.warm_days or settings.warm_ahead_hours):
            return
        # A day once warmed is warmed again if Redis loses it (restarted empty).
        self.rewarm = rewarm = RewarmWatch(
            self.cache, lambda day: self.warm(day, rate_per_s=200, concurrency=2)
        )
        for day in settings.warm_days:  # asked for explicitly: warm before serving
            report = await self.warm(day, rate_per_s=5000, concurrency=4)
            await rewarm.warmed(day)
            _log.info("warmed %d entries for %s in %.1f s (skipped: %s)", report.loaded + report.cached,
                      day, report.seconds, report.skipped or "none")  # fmt: skip
        rewarm.start()
        stack.push_async_callback(rewarm.stop)
        if settings.warm_ahead_hours:
            warmer = asyncio.create_task(self._warm_ahead(settings.warm_ahead_hours))

            async def stop_warmer() -> None:
                warmer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await warmer

            stack.push_async_callback(stop_warmer)

    async def _warm_ahead(self, hours: int) -> None:
        """Scheduled warming: every 10 minutes, warm each wedding day that starts within
        `hours` and has not been warmed by this process yet (gently: 50 entries/s)."""
        warmed: set[date] = set()
        while True:
            now = datetime.now(UTC)
            for offset in range(0, hours // 24 + 2):
                day = (now + timedelta(days=offset)).date()
                starts_in = datetime(day.year, day.month, day.day, tzinfo=UTC) - now
                if day in warmed or starts_in > timedelta(hours=hours):
                    continue
                try:
                    report = await self.warm(day, rate_per_s=50, concurrency=1)
                except Exception:  # the warmer must never take the API down
                    _log.warning("cache warming for %s failed", day, exc_info=True)
                    continue
                warmed.add(day)
                if self.rewarm is not None:
                    await self.rewarm.warmed(day)
                _log.info("warmed %d cache entries for %s in %.1f s (skipped: %s)",
                          report.loaded + report.cached, day, report.seconds,
                          report.skipped or "none")  # fmt: skip
            await asyncio.sleep(600)

    # -- figures and alerts -----------------------------------------------------------

    def _query_cache_figures(self) -> dict[str, Any]:
        hits = misses = 0
        for queries in (self.search_queries, self.availability_queries):
            counters = self.cache.stats.of(queries.data_class)
            hits += counters.hits_local + counters.hits_backend
            misses += counters.misses
        total = hits + misses
        return {"hits": hits, "misses": misses,
                "hit_ratio": round(hits / total, 3) if total else None}  # fmt: skip

    def _redis_figures(self) -> dict[str, Any]:
        assert self.redis_guard is not None  # the section exists only with Redis
        bus, publisher = self.cache.bus, self.monitor.publisher
        return {**self.redis_guard.report(),
                "bus_connected": bus.connected.is_set() if bus is not None else None,
                "fleet_flush_failures": publisher.failures if publisher is not None else None,
                "alert_lease": self.monitor.alerts.lease}  # fmt: skip

    def _add_alert_rules(self, pool: LanedPool, router: ReplicaRouter) -> None:
        """The app's own threshold rules: what only it can measure."""
        alerts, cache = self.monitor.alerts, self.cache
        alerts.add_rule(
            ThresholdRule("DatabasePoolSaturated", "ticket", lambda: pool.in_use / pool.size,
                          0.9, for_s=120, describe="database pool in use (fraction)")
        )  # fmt: skip

        def cache_counts() -> tuple[int, int]:
            by_class = cache.stats.by_class.values()
            hits = sum(c.hits_local + c.hits_backend for c in by_class)
            return hits, hits + sum(c.misses for c in by_class)

        alerts.add_rule(
            ThresholdRule("CacheHitRatioLow", "ticket", windowed_ratio(cache_counts), 0.5,
                          above=False, for_s=300, describe="cache hit ratio, last 5 min")
        )  # fmt: skip
        if router.replicas:
            alerts.add_rule(
                ThresholdRule(
                    "ReplicaLagging", "ticket",
                    lambda: max((r.lag_s for r in router.replicas), default=0.0),
                    router.max_lag_s, for_s=60, describe="worst replica lag (s)",
                )
            )  # fmt: skip


def _pool_figures(pool: LanedPool) -> dict[str, float]:
    waiting = pool.waiting()
    advice = pool.advice()
    return {"size": pool.size, "in_use": pool.in_use, "waiting": sum(waiting.values()),
            "reserved_critical": pool.reserved_critical, "mean_hold_ms": advice["mean_hold_ms"],
            "suggested_size": advice["suggested_size"]}  # fmt: skip
