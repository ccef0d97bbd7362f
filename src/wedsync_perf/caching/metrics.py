"""Prometheus export of cache counters, per data class (custom collector: read on
scrape, nothing on the request path)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wedsync_perf.breaker import BreakerState
from wedsync_perf.caching.cache import Cache

__all__ = ["CacheCollector"]


class CacheCollector(Collector):
    def __init__(self, cache: Cache, namespace: str = "wedsync") -> None:
        self.cache = cache
        self.ns = namespace

    def collect(self) -> Iterable[Metric]:
        ns = self.ns
        hits = CounterMetricFamily(f"{ns}_cache_hits", "Cache hits.", labels=["data_class", "tier"])
        misses = CounterMetricFamily(f"{ns}_cache_misses", "Cache misses.", labels=["data_class"])
        stale = CounterMetricFamily(
            f"{ns}_cache_stale_served",
            "Stale values served while refreshing.",
            labels=["data_class"],
        )
        early = CounterMetricFamily(
            f"{ns}_cache_early_refreshes", "Probabilistic early refreshes.", labels=["data_class"]
        )
        loads = CounterMetricFamily(
            f"{ns}_cache_loader_calls", "Loader calls.", labels=["data_class"]
        )
        load_time = CounterMetricFamily(
            f"{ns}_cache_loader_seconds", "Time spent in loaders.", labels=["data_class"]
        )
        corrupt = CounterMetricFamily(
            f"{ns}_cache_corrupt_entries",
            "Entries that failed to open or parse (served as misses).",
            labels=["data_class"],
        )
        rejected = CounterMetricFamily(
            f"{ns}_cache_rejected",
            "Entries read back and rejected (deleted, served as misses), by reason.",
            labels=["data_class", "reason"],
        )
        not_stored = CounterMetricFamily(
            f"{ns}_cache_not_stored",
            "Writes that left no entry (no keyring for a sensitive class, oversized, ...).",
            labels=["data_class", "reason"],
        )
        errors = CounterMetricFamily(
            f"{ns}_cache_backend_errors",
            "Backend calls that failed or timed out.",
            labels=["data_class"],
        )
        for data_class, c in sorted(self.cache.stats.by_class.items()):
            hits.add_metric([data_class, "local"], c.hits_local)
            hits.add_metric([data_class, "backend"], c.hits_backend)
            misses.add_metric([data_class], c.misses)
            stale.add_metric([data_class], c.stale_served)
            early.add_metric([data_class], c.early_refreshes)
            loads.add_metric([data_class], c.loader_calls)
            load_time.add_metric([data_class], c.loader_seconds)
            corrupt.add_metric([data_class], c.corrupt)
            errors.add_metric([data_class], c.backend_errors)
            for reason, count in sorted(c.rejected.items()):
                rejected.add_metric([data_class, reason], count)
            for reason, count in sorted(c.not_stored.items()):
                not_stored.add_metric([data_class, reason], count)
        yield from (hits, misses, stale, early, loads, load_time, corrupt, rejected, not_stored)
        yield errors
        yield GaugeMetricFamily(
            f"{ns}_cache_backend_available",
            "1 while the circuit breaker is closed (open or probing: calls skip the backend).",
            value=1 if self.cache.breaker.state is BreakerState.CLOSED else 0,
        )
