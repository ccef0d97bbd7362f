"""`Monitor`: the monitoring layer of one process, assembled from settings.

It owns the recorder, the Prometheus registry, and — when a Redis client is given — the
fleet store and its publisher. An app creates one, adds `MonitoringMiddleware` with its
recorder, mounts its endpoints (and the dashboard's, if it wants the page), and calls
`start()`/`stop()` in its lifespan.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wedsync_perf.asgi import ASGIApp
from wedsync_perf.calendar import Regime, WeddingCalendar
from wedsync_perf.keys import RedisKeys
from wedsync_perf.monitoring.alerts import ThresholdRule
from wedsync_perf.monitoring.delivery import AlertmanagerSink, LogSink, Notifier, Sink, WebhookSink
from wedsync_perf.monitoring.endpoints import BearerGuard, metrics_app, stats_app
from wedsync_perf.monitoring.evaluator import AlertEvaluator
from wedsync_perf.monitoring.fleet import FleetPublisher, FleetStore, RedisLike
from wedsync_perf.monitoring.prometheus import RecorderCollector
from wedsync_perf.monitoring.recorder import Recorder, Window
from wedsync_perf.monitoring.slo import SloConfig, default_slos
from wedsync_perf.monitoring.views import summarize
from wedsync_perf.redis_guard import RedisGuard
from wedsync_perf.settings import PerfSettings

__all__ = ["Monitor"]


class Monitor:
    def __init__(
        self,
        settings: PerfSettings,
        *,
        redis: RedisLike | None = None,
        guard: RedisGuard | None = None,
        calendar: WeddingCalendar | None = None,
        clock: Callable[[], float] = time.time,
        slos: SloConfig | None = None,
    ) -> None:
        """`guard`: the breaker and bounds `redis` is called through, shared with the
        process's other Redis users (unset: the fleet store's own)."""
        self.settings = settings
        self.clock = clock
        if slos is None:
            slos = (
                SloConfig.from_toml(settings.slo_file)
                if settings.slo_file
                else default_slos(settings.slo_ms, settings.critical_slo_ms)
            )
        self.slos = slos
        thresholds = {settings.critical_slo_ms / 1000, settings.slo_ms / 1000} | slos.thresholds_s()
        self.recorder = Recorder(
            window_s=settings.window_s,
            retention_s=settings.retention_s,
            slo_thresholds_s=sorted(thresholds),
            max_series=settings.max_series,
            clock=clock,
        )
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(RecorderCollector(self.recorder))
        self.calendar = calendar or WeddingCalendar(
            settings.season_start_month, settings.season_end_month
        )
        self.registry.register(_RegimeCollector(self))  # reads the calendar: after it
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, memory, fds
        self.registry.register(_HostCollector(settings.data_dir))
        self._sections: dict[str, Callable[[], Any]] = {}
        self.store: FleetStore | None = None
        self.publisher: FleetPublisher | None = None
        if redis is not None:
            self.store = FleetStore(
                redis,
                edges=self.recorder.edges,
                window_s=settings.window_s,
                retention_s=settings.retention_s,
                keys=RedisKeys(settings.redis_prefix),
                fleet=settings.fleet,
                guard=guard,
            )
            self.publisher = FleetPublisher(self.recorder, self.store, settings.flush_interval_s)
        self.alerts = AlertEvaluator(
            self.recorder,
            slos,
            self.regime_at,
            self.latency_target_ms,
            notifier=Notifier(_sink(settings)),
            store=self.store,
            summary=lambda last_s: self.summary(last_s, sections=False),
            clock=clock,
        )
        self.alerts.add_rule(
            ThresholdRule("ErrorRateHigh", "ticket", self._error_rate, 0.05, for_s=120,
                          describe="5xx fraction, last 5 min")
        )  # fmt: skip

    def _error_rate(self, last_s: float = 300.0, min_requests: int = 50) -> float | None:
        """5xx fraction of this process's requests over the last `last_s` seconds."""
        total = errors = 0
        for window in self.recorder.windows(self.clock() - last_s):
            for key, stats in window.series.items():
                total += stats.count
                errors += stats.count if key.status_class == "5xx" else 0
        return errors / total if total >= min_requests else None

    def regime_at(self, timestamp: float) -> Regime:
        return self.calendar.regime(datetime.fromtimestamp(timestamp, UTC))

    def latency_target_ms(self, priority: str, regime: Regime) -> float | None:
        """The p95 target a route of `priority` is shown against (bulk work has none)."""
        if priority == "bulk":
            return None
        if priority == "critical" and regime is Regime.WEDDING_DAY:
            return self.settings.critical_slo_ms
        return self.settings.slo_ms

    def add_section(self, name: str, provider: Callable[[], Any]) -> None:
        """Add `provider()`'s JSON-ready result to every `/perf/stats` answer."""
        self._sections[name] = provider

    def start(self) -> None:
        if self.publisher is not None:
            self.publisher.start()
        self.alerts.start()

    async def stop(self) -> None:
        await self.alerts.stop()
        if self.publisher is not None:
            await self.publisher.stop()

    async def windows(
        self, since: float, now: float, fleet: bool = True
    ) -> tuple[list[Window], str]:
        """Windows starting at or after `since`, fleet-wide when a store is configured
        (this process's own if Redis fails), and which scope they cover."""
        if fleet and self.store is not None:
            with contextlib.suppress(Exception):  # Redis unavailable: local figures beat none
                return await self.store.read(since, now), "fleet"
        return self.recorder.windows(since), "process"

    async def summary(
        self, last_s: float, fleet: bool = True, *, sections: bool = True
    ) -> dict[str, Any]:
        """Per-route and per-class figures over the last `last_s` seconds, fleet-wide
        when a store is configured (falling back to this process if Redis fails)."""
        now = self.clock()
        window_s = self.recorder.window_s
        since = now - (now % window_s) - last_s + window_s
        windows, scope = await self.windows(since, now, fleet)
        # Rates are per second of observed time: from the first window that holds data
        # (or the requested start, if later) to now.
        first = min((w.start for w in windows if w.series), default=since)
        span = max(now - max(since, first), 1e-9)
        result = summarize(
            windows,
            self.recorder.edges,
            self.recorder.slo_thresholds_s,
            span,
            window_s,
            self.recorder.in_flight,
            now,
        ).as_dict()
        result["scope"] = scope
        result["regime"] = self.calendar.regime(datetime.fromtimestamp(now, UTC)).value
        if sections:
            result["alerts"] = self.alerts.report()
            for name, provider in self._sections.items():
                result[name] = provider()
        result["slo_ms"] = {
            "critical_wedding_day": self.settings.critical_slo_ms,
            "default": self.settings.slo_ms,
        }
        return result

    @property
    def token(self) -> str | None:
        """`WEDSYNC_PERF_METRICS_TOKEN`: whatever reads the monitor over HTTP asks for it
        (None turns those endpoints off)."""
        secret = self.settings.metrics_token
        return secret.get_secret_value() if secret else None

    def endpoints(self) -> dict[str, ASGIApp]:
        """`/metrics` and `/perf/stats`, each guarded by the token. The dashboard adds
        its own (`wedsync_perf.dashboard.dashboard_endpoints`): it builds on these."""
        return {
            "/metrics": BearerGuard(metrics_app(self.registry), self.token),
            "/perf/stats": BearerGuard(
                stats_app(self.summary, self.settings.retention_s), self.token
            ),
        }


def _sink(settings: PerfSettings) -> Sink:
    """Alertmanager if configured, else the webhook, else the log."""
    if settings.alertmanager_url:
        return AlertmanagerSink(settings.alertmanager_url)
    if settings.alert_webhook_url:
        secret = settings.alert_webhook_secret
        return WebhookSink(
            settings.alert_webhook_url,
            secret.get_secret_value().encode() if secret else None,
            slack=settings.alert_webhook_format == "slack",
        )
    return LogSink()


class _RegimeCollector(Collector):
    """`wedsync_regime{regime=…}`: 1 for the regime in force, so Prometheus rules switch
    objectives on the same days as the app (booked wedding dates included)."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterable[Metric]:
        now = datetime.fromtimestamp(self.monitor.clock(), UTC)
        current = self.monitor.calendar.regime(now)
        gauge = GaugeMetricFamily(
            "wedsync_regime", "Operating regime (1 = in force).", labels=["regime"]
        )
        for regime in Regime:
            gauge.add_metric([regime.value], 1.0 if regime is current else 0.0)
        yield gauge


class _HostCollector(Collector):
    """The host this instance runs on (psutil): CPU, memory and the data folder's disk,
    as ratios — for the health checks' thresholds and for capacity planning."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def collect(self) -> Iterable[Metric]:
        import psutil

        folder = self.data_dir if self.data_dir.exists() else self.data_dir.parent
        for name, help_text, value in (
            ("wedsync_host_cpu_ratio", "Host CPU in use since the last scrape (0–1).",
             psutil.cpu_percent(interval=None) / 100),
            ("wedsync_host_memory_ratio", "Host memory in use (0–1).", psutil.virtual_memory().percent / 100),
            ("wedsync_host_disk_ratio", "Disk in use where the data folder lives (0–1).",
             psutil.disk_usage(str(folder)).percent / 100 if folder.exists() else 0.0),
        ):  # fmt: skip
            yield GaugeMetricFamily(name, help_text, value=value)
