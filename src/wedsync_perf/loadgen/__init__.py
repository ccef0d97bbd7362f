"""An open-loop HTTP load driver with per-endpoint latency sketches.

Open loop (arrivals on a Poisson schedule, not "send the next when the last returns")
so a slow server cannot slow the driver down and hide its own latency — the
coordinated-omission trap of closed-loop load tools.
"""

from wedsync_perf.loadgen.driver import RequestSpec, Workload, drive
from wedsync_perf.loadgen.report import render_summary
from wedsync_perf.loadgen.stats import EndpointStats, LoadStats

__all__ = [
    "EndpointStats",
    "LoadStats",
    "RequestSpec",
    "Workload",
    "drive",
    "render_summary",
]
