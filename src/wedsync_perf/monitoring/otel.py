"""Optional OpenTelemetry export (`pip install wedsync-perf[otel]`).

Observable instruments read the same recorder the Prometheus collector reads, when the
SDK's reader collects — nothing is added to the request path. Attributes follow the
HTTP semantic conventions where they exist (`http.route`, `http.request.method`) and
are templates and closed sets only, as everywhere in wedsync-perf.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wedsync_perf.monitoring.recorder import Recorder
from wedsync_perf.monitoring.series import SeriesKey

__all__ = ["instrument_meter"]


def _attributes(key: SeriesKey) -> dict[str, str]:
    return {
        "http.route": key.route,
        "http.request.method": key.method,
        "http.response.status_class": key.status_class,
        "wedsync.priority": key.priority,
    }


def instrument_meter(
    recorder: Recorder,
    meter_provider: Any = None,
    *,
    quantile_window_s: float = 60.0,
    quantiles: tuple[float, ...] = (0.5, 0.95, 0.99),
) -> None:
    """Register observable instruments for `recorder` on `meter_provider` (default: the
    global one). Raises ImportError naming the extra when OpenTelemetry is missing."""
    try:
        from opentelemetry import metrics
        from opentelemetry.metrics import CallbackOptions, Observation
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError("OpenTelemetry export needs `pip install wedsync-perf[otel]`") from exc

    provider = meter_provider or metrics.get_meter_provider()
    meter = provider.get_meter("wedsync_perf.monitoring")

    def requests(_: CallbackOptions) -> Iterable[Observation]:
        for key, stats in recorder.totals().items():
            yield Observation(stats.count, _attributes(key))

    def duration_sum(_: CallbackOptions) -> Iterable[Observation]:
        for key, stats in recorder.totals().items():
            yield Observation(stats.sum, _attributes(key))

    def duration_quantiles(_: CallbackOptions) -> Iterable[Observation]:
        for key, stats in recorder.view(quantile_window_s).items():
            for q in quantiles:
                value = stats.quantile(q)
                if value is not None:
                    yield Observation(value, {**_attributes(key), "quantile": f"{q:g}"})

    def in_flight(_: CallbackOptions) -> Iterable[Observation]:
        yield Observation(recorder.in_flight)

    meter.create_observable_counter(
        "wedsync.http.server.requests", callbacks=[requests], unit="{request}",
        description="HTTP requests by route template.",
    )  # fmt: skip
    meter.create_observable_counter(
        "wedsync.http.server.request.duration.sum", callbacks=[duration_sum], unit="s",
        description="Total time spent answering requests.",
    )  # fmt: skip
    meter.create_observable_gauge(
        "wedsync.http.server.request.duration.quantile", callbacks=[duration_quantiles],
        unit="s", description=f"Latency quantiles over the last {quantile_window_s:g} s "
        "(DDSketch, 1 % relative error).",
    )  # fmt: skip
    meter.create_observable_up_down_counter(
        "wedsync.http.server.active_requests", callbacks=[in_flight], unit="{request}",
        description="Requests being handled now.",
    )  # fmt: skip
