"""Prometheus export of the protection layer: the balancer's view of each upstream and
admission control's limit and sheds (read on scrape, like the pool's collector).

Backends are labelled by `host:port` — infrastructure, never a person — so a dashboard
can show which vendor gateway replica is ejected and why the vendor route is degraded.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wedsync_perf.scaling.admission import AdmissionController
from wedsync_perf.scaling.balancer import BalancedTransport

__all__ = ["AdmissionCollector", "BalancerCollector"]


class BalancerCollector(Collector):
    def __init__(
        self, transport: BalancedTransport, upstream: str, namespace: str = "wedsync"
    ) -> None:
        self.transport = transport
        self.upstream = upstream
        self.ns = namespace

    def collect(self) -> Iterable[Metric]:
        ns, t, up = self.ns, self.transport, [self.upstream]
        requests = CounterMetricFamily(
            f"{ns}_upstream_requests", "Calls made through the balancer.", labels=["upstream"]
        )
        requests.add_metric(up, t.requests)
        yield requests
        yield from _families(ns, t, up, t.clock())


def _families(ns: str, t: BalancedTransport, up: list[str], now: float) -> Iterable[Metric]:
    retries = CounterMetricFamily(
        f"{ns}_upstream_retries", "Retries spent from the retry budget.", labels=["upstream"]
    )
    retries.add_metric(up, t.retries)
    breaker = GaugeMetricFamily(
        f"{ns}_upstream_circuit_open",
        "1 while calls are paused by the breaker.",
        labels=["upstream"],
    )
    breaker.add_metric(up, float(t.circuit_open()))
    labels = ["upstream", "backend"]
    ejected = GaugeMetricFamily(f"{ns}_upstream_backend_ejected",
                                "1 while outlier detection keeps this backend out.", labels=labels)  # fmt: skip
    ejections = CounterMetricFamily(f"{ns}_upstream_backend_ejections",
                                    "Times this backend was ejected.", labels=labels)  # fmt: skip
    healthy = GaugeMetricFamily(f"{ns}_upstream_backend_healthy",
                                "1 unless active health checks failed.", labels=labels)  # fmt: skip
    latency = GaugeMetricFamily(f"{ns}_upstream_backend_latency_ewma_seconds",
                                "Peak-EWMA round trip the balancer routes by.", labels=labels)  # fmt: skip
    pending = GaugeMetricFamily(f"{ns}_upstream_backend_pending",
                                "Calls in flight to this backend.", labels=labels)  # fmt: skip
    for backend in t.backends:
        key = [*up, f"{backend.url.host}:{backend.url.port}"]
        ejected.add_metric(key, float(backend.ejected_until > now))
        ejections.add_metric(key, backend.ejections)
        healthy.add_metric(key, float(backend.healthy))
        latency.add_metric(key, backend.ewma_s)
        pending.add_metric(key, backend.pending)
    yield from (retries, breaker, ejected, ejections, healthy, latency, pending)


class AdmissionCollector(Collector):
    def __init__(self, controller: AdmissionController, namespace: str = "wedsync") -> None:
        self.controller = controller
        self.ns = namespace

    def collect(self) -> Iterable[Metric]:
        ns, c = self.ns, self.controller
        yield GaugeMetricFamily(f"{ns}_admission_limit", "Adaptive concurrency limit now.",
                                value=c.limit.limit)  # fmt: skip
        yield GaugeMetricFamily(f"{ns}_admission_in_flight", "Admitted requests in flight.",
                                value=c.in_flight)  # fmt: skip
        yield GaugeMetricFamily(f"{ns}_admission_queueing_delay_seconds",
                                "Queueing delay the limit steers by (loop lag or pool wait).",
                                value=c.queueing_delay_s)  # fmt: skip
        yield GaugeMetricFamily(f"{ns}_admission_critical_waiting",
                                "Critical requests waiting for room.", value=len(c.queue))  # fmt: skip
        yield CounterMetricFamily(f"{ns}_admission_critical_wait_expired",
                                  "Critical requests refused after waiting for room.",
                                  value=c.queue.expired)  # fmt: skip
        yield CounterMetricFamily(f"{ns}_admission_congested_ticks",
                                  "Ticks on which the limit backed off.", value=c.congested_ticks)  # fmt: skip
        admitted = CounterMetricFamily(f"{ns}_admission_admitted", "Requests admitted.",
                                       labels=["priority"])  # fmt: skip
        rejected = CounterMetricFamily(f"{ns}_admission_rejected",
                                       "Requests shed with 503 + Retry-After.", labels=["priority"])  # fmt: skip
        for priority, n in c.counters.admitted.items():
            admitted.add_metric([priority.value], n)
            rejected.add_metric([priority.value], c.counters.rejected[priority])
        yield from (admitted, rejected)
