"""Per-route latency and throughput: sketches, windows, middleware, exports.

Typical use (the classifier, outermost, tells monitoring which route a request is for)::

    recorder = Recorder()
    app.add_middleware(MonitoringMiddleware, recorder=recorder)
    app.add_middleware(ClassifierMiddleware, table=RouteTable.compile(app.routes))
"""

from wedsync_perf.monitoring.middleware import CACHE_SCOPE_KEY, MonitoringMiddleware, mark_cache_hit
from wedsync_perf.monitoring.recorder import OVERFLOW_ROUTE, UNMATCHED_ROUTE, Recorder, Window
from wedsync_perf.monitoring.series import SeriesKey, SeriesStats, status_class
from wedsync_perf.monitoring.sketch import LatencySketch

__all__ = [
    "CACHE_SCOPE_KEY",
    "OVERFLOW_ROUTE",
    "UNMATCHED_ROUTE",
    "LatencySketch",
    "MonitoringMiddleware",
    "Recorder",
    "SeriesKey",
    "SeriesStats",
    "Window",
    "mark_cache_hit",
    "status_class",
]
