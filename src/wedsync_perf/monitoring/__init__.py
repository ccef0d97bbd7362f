"""Per-route latency and throughput: sketches, windows, middleware, exports.

Typical use::

    recorder = Recorder()
    app.add_middleware(MonitoringMiddleware, recorder=recorder)
"""

from wedsync_perf.monitoring.middleware import CACHE_SCOPE_KEY, MonitoringMiddleware, mark_cache_hit
from wedsync_perf.monitoring.recorder import OVERFLOW_ROUTE, UNMATCHED_ROUTE, Recorder, Window
from wedsync_perf.monitoring.routes import ResolvedRoute, RouteResolver
from wedsync_perf.monitoring.series import SeriesKey, SeriesStats, status_class
from wedsync_perf.monitoring.sketch import LatencySketch

__all__ = [
    "CACHE_SCOPE_KEY",
    "OVERFLOW_ROUTE",
    "UNMATCHED_ROUTE",
    "LatencySketch",
    "MonitoringMiddleware",
    "Recorder",
    "ResolvedRoute",
    "RouteResolver",
    "SeriesKey",
    "SeriesStats",
    "Window",
    "mark_cache_hit",
    "status_class",
]
