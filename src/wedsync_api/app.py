"""The reference WedSync API: `create_app(settings)` builds it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import redis.asyncio as redis_asyncio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.registry import Collector
from starlette.requests import ClientDisconnect

from wedsync_api.auth import Authenticator, RateLimiter
from wedsync_api.db import create_pool, database_url
from wedsync_api.fastpath import CachedReadFastPath
from wedsync_api.routes import health, imports, suppliers, venues, weddings
from wedsync_api.settings import ApiSettings, load_api_settings
from wedsync_perf.caching import Cache, build_cache
from wedsync_perf.caching.metrics import CacheCollector
from wedsync_perf.database import LanedPool, PoolTimeout
from wedsync_perf.database.metrics import PoolCollector
from wedsync_perf.database.queries import QueryTracker
from wedsync_perf.database.replicas import ReplicaRouter, WritePositions
from wedsync_perf.keys import RedisKeys
from wedsync_perf.monitoring import MonitoringMiddleware
from wedsync_perf.monitoring.alerts import ThresholdRule, windowed_ratio
from wedsync_perf.monitoring.monitor import Monitor
from wedsync_perf.scaling.admission import AdaptiveLimit, AdmissionController, AdmissionMiddleware
from wedsync_perf.scaling.balancer import BalancedTransport
from wedsync_perf.scaling.metrics import AdmissionCollector, BalancerCollector
from wedsync_perf.settings import PerfSettings, load_settings

__all__ = ["create_app"]

_log = logging.getLogger(__name__)

# Errors that mean "the database is unreachable right now": answer 503 + Retry-After so
# clients back off, instead of a 500 that looks like a bug.
_UNAVAILABLE = (
    OSError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.TooManyConnectionsError,
    asyncpg.QueryCanceledError,
)


def create_app(
    settings: ApiSettings | None = None,
    *,
    dsn: str | None = None,
    perf: PerfSettings | None = None,
) -> FastAPI:
    """Build the API. `dsn` overrides URL resolution (tests pass a prepared database);
    otherwise `DATABASE_URL` or the embedded server is used."""
    settings = settings or load_api_settings()
    perf = perf or load_settings(PerfSettings)
    redis = redis_asyncio.Redis.from_url(settings.redis_url) if settings.redis_url else None
    keys = RedisKeys(perf.redis_prefix)
    monitor = Monitor(perf, redis=redis)
    cache = build_cache(perf, redis=redis)
    monitor.registry.register(CacheCollector(cache))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await _laned(dsn or database_url(settings, perf), settings)
        pool_collector = PoolCollector(pool)
        monitor.registry.register(pool_collector)
        app.state.pool = pool
        router = ReplicaRouter(
            pool,
            {
                f"replica-{i}": await _laned(url, settings)
                for i, url in enumerate(settings.replicas, 1)
            },
            WritePositions(redis, keys=keys) if settings.replicas else None,
            max_lag_s=settings.replica_max_lag_ms / 1000,
        )
        await router.start()
        app.state.router = router
        if settings.replicas:
            monitor.add_section("replicas", router.report)
        monitor.add_section("pool", lambda: _pool_figures(pool))
        vendors_client = None
        collectors: list[Collector] = [pool_collector]
        if settings.vendor_urls:  # vendor systems behind the balancer (ejection, budget)
            transport = BalancedTransport(settings.vendor_urls)
            vendors_client = httpx.AsyncClient(
                transport=transport, timeout=settings.vendor_deadline_ms / 1000
            )
            app.state.vendors_client = vendors_client
            collectors.append(BalancerCollector(transport, upstream="vendors"))
            monitor.registry.register(collectors[-1])
        _add_alert_rules(monitor, pool, router, cache)
        app.state.redis = redis
        app.state.authenticator = Authenticator(pool, settings.auth_cache_seconds)
        app.state.rate_limiter = RateLimiter(
            settings.rate_limit, settings.redis_url, redis, keys=keys
        )
        monitor.start()
        admission_control = getattr(app.state, "admission", None)
        if admission_control is not None:
            admission_control.add_delay_signal(pool.queueing_delay_s)
            admission_control.watch_loop()
        await cache.start()
        for day in settings.warm_days:  # asked for explicitly: warm before serving
            from wedsync_api.warming import warm_day

            report = await warm_day(pool, cache, day, rate_per_s=5000, concurrency=4)
            _log.info("warmed %d entries for %s in %.1f s", report.entries, day, report.seconds)
        warmer = (
            asyncio.create_task(_warm_ahead(pool, cache, settings.warm_ahead_hours))
            if settings.warm_ahead_hours
            else None
        )
        try:
            yield
        finally:
            for collector in collectors:
                monitor.registry.unregister(collector)
            if warmer is not None:
                warmer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await warmer
            await cache.stop()
            await monitor.stop()
            await router.close()
            if vendors_client is not None:
                await vendors_client.aclose()
            if admission_control is not None:
                await admission_control.stop()
            if redis is not None:
                await redis.aclose()
            await pool.close()

    app = FastAPI(
        title="WedSync reference API",
        version="0.1.0",
        description="Wedding-planning API on which wedsync-perf is measured. "
        "Every route declares its priority class in `x-wedsync-priority`.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.monitor = monitor
    app.state.data_dir = perf.data_dir if perf.data_dir.exists() else perf.data_dir.parent
    app.state.cache = cache
    app.state.queries = QueryTracker()
    monitor.add_section("queries", app.state.queries.report)  # per-route queries, N+1
    app.include_router(health.router)
    app.include_router(suppliers.router)
    app.include_router(venues.router)
    app.include_router(weddings.router)
    app.include_router(imports.router)

    @app.exception_handler(_UNAVAILABLE[0])
    async def _os_unavailable(request: Request, exc: Exception) -> JSONResponse:
        return _unavailable()

    for error in _UNAVAILABLE[1:]:
        app.add_exception_handler(error, _os_unavailable)
    app.add_exception_handler(PoolTimeout, _os_unavailable)  # lanes full: 503, retry soon

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: Exception) -> Response:
        # The client hung up while its body was read (a timeout under overload): nothing
        # to answer and no server error to log. 499 is the status access logs know for it.
        return Response(status_code=499)

    endpoints = monitor.endpoints()
    for path, endpoint in endpoints.items():
        # Starlette wraps plain functions only; an ASGI callable object is served as is.
        app.add_route(path, endpoint, include_in_schema=False)  # type: ignore[arg-type]
    if settings.layer == "on":  # cached reads served before routing (after auth, limits)
        app.add_middleware(CachedReadFastPath)
    if settings.inject == "slow-timeline":  # demos only: measured like any slowness
        app.add_middleware(SlowTimeline, delay_s=0.25)
    if settings.admission and settings.layer == "on":  # inside monitoring: sheds are measured
        admission = AdmissionController(
            limit=AdaptiveLimit(initial=settings.admission_initial_limit, max_limit=10_000),
            exempt_paths=frozenset({"/health/live", "/health/ready", *endpoints}),
        )
        app.add_middleware(AdmissionMiddleware, controller=admission)
        monitor.add_section("admission", admission.report)
        monitor.registry.register(AdmissionCollector(admission))
        app.state.admission = admission
    # Outermost user middleware: it times everything below it, auth included. Probes
    # and the monitoring endpoints are not measured.
    app.add_middleware(
        MonitoringMiddleware,
        recorder=monitor.recorder,
        skip_paths={"/health/live", "/health/ready", *endpoints},
    )
    return app


def _pool_figures(pool: LanedPool) -> dict[str, float]:
    waiting = pool.waiting()
    advice = pool.advice()
    return {"size": pool.size, "in_use": pool.in_use, "waiting": sum(waiting.values()),
            "reserved_critical": pool.reserved_critical, "mean_hold_ms": advice["mean_hold_ms"],
            "suggested_size": advice["suggested_size"]}  # fmt: skip


def _add_alert_rules(
    monitor: Monitor, pool: LanedPool, router: ReplicaRouter, cache: Cache
) -> None:
    """The app's own threshold rules: what only it can measure."""
    monitor.alerts.add_rule(
        ThresholdRule("DatabasePoolSaturated", "ticket", lambda: pool.in_use / pool.size, 0.9,
                      for_s=120, describe="database pool in use (fraction)")
    )  # fmt: skip

    def cache_counts() -> tuple[int, int]:
        by_class = cache.stats.by_class.values()
        hits = sum(c.hits_local + c.hits_backend for c in by_class)
        return hits, hits + sum(c.misses for c in by_class)

    monitor.alerts.add_rule(
        ThresholdRule("CacheHitRatioLow", "ticket", windowed_ratio(cache_counts), 0.5,
                      above=False, for_s=300, describe="cache hit ratio, last 5 min")
    )  # fmt: skip
    if router.replicas:
        monitor.alerts.add_rule(
            ThresholdRule(
                "ReplicaLagging", "ticket",
                lambda: max((r.lag_s for r in router.replicas), default=0.0),
                router.max_lag_s, for_s=60, describe="worst replica lag (s)",
            )
        )  # fmt: skip


async def _laned(dsn: str, settings: ApiSettings) -> LanedPool:
    lanes = settings.layer == "on"  # off: one shared pool, first come first served
    return LanedPool(
        await create_pool(dsn, settings),
        size=settings.pool_max_size,
        reserved_critical=settings.pool_reserved_critical if lanes else 0,
        max_bulk=settings.pool_max_bulk if lanes else settings.pool_max_size,
        acquire_timeout_s=settings.pool_acquire_timeout_ms / 1000,
        validate_idle_s=settings.pool_validate_idle_ms / 1000,
    )


async def _warm_ahead(pool: LanedPool, cache: Cache, hours: int) -> None:
    """Scheduled warming: every 10 minutes, warm each wedding day that starts within
    `hours` and has not been warmed by this process yet (gently: 50 entries/s)."""
    from wedsync_api.warming import warm_day

    warmed: set[date] = set()
    while True:
        now = datetime.now(UTC)
        for offset in range(0, hours // 24 + 2):
            day = (now + timedelta(days=offset)).date()
            starts_in = datetime(day.year, day.month, day.day, tzinfo=UTC) - now
            if day in warmed or starts_in > timedelta(hours=hours):
                continue
            try:
                report = await warm_day(pool, cache, day, rate_per_s=50, concurrency=1)
            except Exception:  # the warmer must never take the API down
                _log.warning("cache warming for %s failed", day, exc_info=True)
                continue
            warmed.add(day)
            _log.info(
                "warmed %d cache entries for %s in %.1f s", report.entries, day, report.seconds
            )
        await asyncio.sleep(600)


class SlowTimeline:
    """Fault injection (`WEDSYNC_API_INJECT=slow-timeline`): every timeline request
    takes `delay_s` longer, so a demo can show an SLO burning and its alert firing."""

    def __init__(self, app: Any, delay_s: float) -> None:
        self.app = app
        self.delay_s = delay_s

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/timeline"):
            await asyncio.sleep(self.delay_s)
        await self.app(scope, receive, send)


def _unavailable() -> JSONResponse:
    return JSONResponse(
        {"detail": "database temporarily unavailable"},
        status_code=503,
        headers={"Retry-After": "1"},
    )
