"""Prometheus export of the laned pool's figures (read on scrape)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wedsync_perf.database.pool import LanedPool

__all__ = ["PoolCollector"]


class PoolCollector(Collector):
    def __init__(self, pool: LanedPool, namespace: str = "wedsync") -> None:
        self.pool = pool
        self.ns = namespace

    def collect(self) -> Iterable[Metric]:
        ns, pool = self.ns, self.pool
        yield GaugeMetricFamily(f"{ns}_db_pool_size", "Configured connections.", value=pool.size)
        yield GaugeMetricFamily(f"{ns}_db_pool_in_use", "Connections held now.", value=pool.in_use)
        waiting = GaugeMetricFamily(
            f"{ns}_db_pool_waiting", "Requests queued for a connection.", labels=["priority"]
        )
        # A summary: quantile samples plus _count and _sum, as promtool expects.
        wait = Metric(
            f"{ns}_db_pool_acquire_wait_seconds", "Acquire wait since start (DDSketch).", "summary"
        )
        timeouts = CounterMetricFamily(
            f"{ns}_db_pool_timeouts", "Acquires that timed out (503).", labels=["priority"]
        )
        acquired = CounterMetricFamily(
            f"{ns}_db_pool_acquires", "Connections handed out.", labels=["priority"]
        )
        for priority, queued in pool.waiting().items():
            waiting.add_metric([priority], queued)
        for priority, sketch in pool.stats.acquire_wait.items():
            labels = {"priority": priority.value}
            for q in (0.5, 0.95, 0.99):
                value = sketch.quantile(q)
                if value is not None:
                    wait.add_sample(wait.name, {**labels, "quantile": f"{q:g}"}, value)
            wait.add_sample(f"{wait.name}_count", labels, sketch.count)
            wait.add_sample(f"{wait.name}_sum", labels, sketch.sum)
            timeouts.add_metric([priority.value], pool.stats.timeouts[priority])
            acquired.add_metric([priority.value], pool.stats.acquired[priority])
        yield from (waiting, wait, timeouts, acquired)
        yield CounterMetricFamily(
            f"{ns}_db_pool_connections_lost",
            "Connections discarded after a connection-level error or a failed ping.",
            value=pool.connections_lost,
        )
        yield GaugeMetricFamily(
            f"{ns}_db_pool_suggested_size",
            "Little's-law size for the peak seen, with 30 % headroom.",
            value=pool.advice()["suggested_size"],
        )
