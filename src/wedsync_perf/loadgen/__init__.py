"""An open-loop HTTP load driver with per-endpoint latency sketches.

Open loop (arrivals on a Poisson schedule, not "send the next when the last returns")
so a slow server cannot slow the driver down and hide its own latency — the
coordinated-omission trap of closed-loop load tools. `drive` (httpx) builds each request
as it goes; `constant_rate` sends pre-encoded requests on raw connections, cheap enough to
overload a Python server from the same machine.
"""

from wedsync_perf.loadgen.constant_rate import EncodedRequest, constant_rate, encode
from wedsync_perf.loadgen.driver import RequestSpec, Workload, drive
from wedsync_perf.loadgen.report import render_summary
from wedsync_perf.loadgen.stats import EndpointStats, LoadStats

__all__ = [
    "EncodedRequest",
    "EndpointStats",
    "LoadStats",
    "RequestSpec",
    "Workload",
    "constant_rate",
    "drive",
    "encode",
    "render_summary",
]
