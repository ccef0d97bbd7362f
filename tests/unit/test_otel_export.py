from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from wedsync_perf.monitoring.otel import instrument_meter
from wedsync_perf.monitoring.recorder import Recorder


def _points(reader: InMemoryMetricReader) -> dict[str, list[object]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[object]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = list(metric.data.data_points)
    return found


def test_recorder_is_exported_through_opentelemetry() -> None:
    recorder = Recorder()
    for ms in range(1, 101):
        recorder.record("/weddings/{wedding_id}/timeline", "GET", 200, "critical", ms / 1000)
    reader = InMemoryMetricReader()
    instrument_meter(recorder, MeterProvider(metric_readers=[reader]))
    points = _points(reader)
    [requests] = points["wedsync.http.server.requests"]
    assert requests.value == 100  # type: ignore[attr-defined]
    assert requests.attributes == {  # type: ignore[attr-defined]
        "http.route": "/weddings/{wedding_id}/timeline",
        "http.request.method": "GET",
        "http.response.status_class": "2xx",
        "wedsync.priority": "critical",
    }
    quantiles = {
        p.attributes["quantile"]: p.value  # type: ignore[attr-defined]
        for p in points["wedsync.http.server.request.duration.quantile"]
    }
    assert abs(quantiles["0.99"] - 0.099) <= 0.099 * 0.01
