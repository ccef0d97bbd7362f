"""Prometheus exposition: a custom collector that reads the recorder on scrape.

The request path only updates in-process state; this runs when Prometheus asks
(prometheus/client_python's custom-collector pattern). Families, all per route
template × method × status class × priority:

- `wedsync_http_requests_total` (counter)
- `wedsync_http_request_duration_seconds` (histogram; edges at every SLO threshold, so
  the bucket counts at 100 ms and 200 ms are exact)
- `wedsync_http_request_duration_window_seconds{quantile=…}` (gauge: p50/p95/p99 over
  the last minute from the sketches, 1 % relative error)
- `wedsync_http_response_bytes_total`, `wedsync_http_cache_hits_total` (counters)
- `wedsync_http_requests_in_flight` (gauge), `wedsync_monitoring_series` (gauge),
  `wedsync_monitoring_overflow_total` (counter: records folded by the series cap)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from wedsync_perf.monitoring.recorder import Recorder

__all__ = ["RecorderCollector"]

_LABELS = ["route", "method", "status_class", "priority"]


class RecorderCollector(Collector):
    def __init__(
        self,
        recorder: Recorder,
        *,
        namespace: str = "wedsync",
        quantile_window_s: float = 60.0,
        quantiles: tuple[float, ...] = (0.5, 0.95, 0.99),
    ) -> None:
        self.recorder = recorder
        self.ns = namespace
        self.quantile_window_s = quantile_window_s
        self.quantiles = quantiles

    def collect(self) -> Iterable[Metric]:
        ns = self.ns
        rec = self.recorder
        requests = CounterMetricFamily(
            f"{ns}_http_requests", "HTTP requests by route template.", labels=_LABELS
        )
        duration = HistogramMetricFamily(
            f"{ns}_http_request_duration_seconds",
            "Time from request to last response byte (background tasks excluded).",
            labels=_LABELS,
        )
        sent = CounterMetricFamily(
            f"{ns}_http_response_bytes", "Response body bytes sent.", labels=_LABELS
        )
        hits = CounterMetricFamily(
            f"{ns}_http_cache_hits", "Responses served from a cache.", labels=_LABELS
        )
        edges = [f"{e:g}" for e in rec.edges] + ["+Inf"]
        totals = rec.totals()
        for key, stats in sorted(totals.items()):
            labels = list(key)
            requests.add_metric(labels, stats.count)
            running, cumulative = 0, []
            for n in stats.buckets:
                running += n
                cumulative.append(running)
            duration.add_metric(labels, list(zip(edges, cumulative, strict=True)), stats.sum)
            sent.add_metric(labels, stats.bytes_sent)
            hits.add_metric(labels, stats.cache_hits)
        yield requests
        yield duration
        yield sent
        yield hits

        # A summary in Prometheus' own sense: quantiles over a sliding window (here the
        # sketches of the last minute), _count and _sum cumulative.
        summary = Metric(
            f"{ns}_http_request_duration_window_seconds",
            f"Latency quantiles over the last {self.quantile_window_s:g} s (DDSketch, 1 % "
            "relative error).",
            "summary",
        )
        recent = rec.view(self.quantile_window_s)
        for key, stats in sorted(totals.items()):
            label_map = dict(zip(_LABELS, key, strict=True))
            window_stats = recent.get(key)
            if window_stats is not None:
                for q in self.quantiles:
                    value = window_stats.quantile(q)
                    if value is not None and math.isfinite(value):
                        summary.add_sample(summary.name, {**label_map, "quantile": f"{q:g}"}, value)
            summary.add_sample(f"{summary.name}_count", label_map, stats.count)
            summary.add_sample(f"{summary.name}_sum", label_map, stats.sum)
        yield summary

        yield GaugeMetricFamily(
            f"{ns}_http_requests_in_flight", "Requests being handled now.", value=rec.in_flight
        )
        yield GaugeMetricFamily(
            f"{ns}_monitoring_series", "Distinct series recorded.", value=rec.series_count()
        )
        yield CounterMetricFamily(
            f"{ns}_monitoring_overflow",
            "Records folded into the overflow series by the series cap.",
            value=rec.dropped_series,
        )
