"""The live dashboard at `/perf`: the monitoring layer's own view, no Grafana needed.

One HTML page, a small script, and uPlot (from the npm registry, committed as a built
asset: the page works offline). The page opens `/perf/events`, a server-sent-events
stream that pushes one snapshot per window — the regime, every objective with its
error budget and burn rates, per-route p50/p95/p99 against the target, requests/s,
errors, cache hit ratio, pool saturation, active alerts, and the last hour as time
series. Snapshots are computed once per window and shared by every open page.

Same credentials as `/metrics`: `Authorization: Bearer <token>`, or HTTP Basic with the
token as the password — which is what a browser sends after its own login prompt.
"""

from wedsync_perf.dashboard.app import dashboard_endpoints
from wedsync_perf.dashboard.data import snapshot

__all__ = ["dashboard_endpoints", "snapshot"]
