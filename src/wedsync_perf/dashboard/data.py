"""What the dashboard shows, as one JSON-ready snapshot built from the Monitor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wedsync_perf.monitoring.recorder import Window
from wedsync_perf.monitoring.sketch import LatencySketch

if TYPE_CHECKING:
    from wedsync_perf.monitoring.monitor import Monitor

__all__ = ["snapshot", "timeseries"]

_CLASSES = ("critical", "standard", "bulk")


def timeseries(windows: list[Window], window_s: float) -> dict[str, list[Any]]:
    """Per window: start (s), requests/s, 5xx/s, and p95 (ms) of each priority class."""
    out: dict[str, list[Any]] = {"t": [], "rps": [], "errors": []}
    for cls in _CLASSES:
        out[f"p95_{cls}"] = []
    for window in sorted(windows, key=lambda w: w.start):
        per_class = {cls: LatencySketch() for cls in _CLASSES}
        count = errors = 0
        for key, stats in window.series.items():
            count += stats.count
            if key.status_class == "5xx":
                errors += stats.count
            sketch = per_class.get(key.priority)
            if sketch is not None:
                sketch.merge(stats)
        out["t"].append(window.start)
        out["rps"].append(round(count / window_s, 3))
        out["errors"].append(round(errors / window_s, 3))
        for cls, sketch in per_class.items():
            p95 = sketch.quantile(0.95)
            out[f"p95_{cls}"].append(None if p95 is None else round(p95 * 1000, 3))
    return out


async def snapshot(
    monitor: Monitor, last_s: float = 60.0, history_s: float = 3600.0
) -> dict[str, Any]:
    """The summary of the last `last_s` seconds (with alerts, objectives and the app's
    sections), each route's latency target, and the last `history_s` as time series."""
    summary = await monitor.summary(last_s)
    now = monitor.clock()
    window_s = monitor.recorder.window_s
    since = now - (now % window_s) - history_s + window_s
    windows, _ = await monitor.windows(since, now)
    regime = monitor.regime_at(now)
    for route in summary["routes"]:
        route["target_ms"] = monitor.latency_target_ms(route["priority"], regime)
    summary["series"] = timeseries(windows, window_s)
    summary["generated_at"] = now
    return summary
