"""A Grafana dashboard (JSON model) for teams that scrape `/metrics`: RED per route and
the SLO burn rates of the generated Prometheus rules. Import it, pick the data source."""

from __future__ import annotations

from typing import Any

from wedsync_perf.monitoring.slo import SloConfig

__all__ = ["grafana_dashboard"]

_DS = {"type": "prometheus", "uid": "${datasource}"}


def _panel(
    pid: int, title: str, exprs: list[tuple[str, str]], unit: str, x: int, y: int
) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": _DS,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": _DS}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def grafana_dashboard(config: SloConfig, *, title: str = "WedSync API") -> dict[str, Any]:
    rate = 'sum by (route) (rate(wedsync_http_requests_total{route=~"$route"}[5m]))'
    errors = (
        'sum by (route) (rate(wedsync_http_requests_total{route=~"$route", status_class="5xx"}[5m]))'
        ' / sum by (route) (rate(wedsync_http_requests_total{route=~"$route"}[5m]))'
    )
    p95 = (
        "histogram_quantile(0.95, sum by (route, le) "
        '(rate(wedsync_http_request_duration_seconds_bucket{route=~"$route"}[5m])))'
    )
    burns = []
    for objective in config.objectives:
        target = objective.objective
        burns.append(
            (
                f'max(wedsync:slo_bad:ratio_rate1h{{objective="{objective.name}"}}) / {1 - target:.6g}',
                f"{objective.name} (1h)",
            )
        )
    panels = [
        _panel(1, "Requests per second by route", [(rate, "{{route}}")], "reqps", 0, 0),
        _panel(2, "Error ratio (5xx) by route", [(errors, "{{route}}")], "percentunit", 12, 0),
        _panel(3, "p95 latency by route", [(p95, "{{route}}")], "s", 0, 8),
        _panel(4, "SLO burn rate (1 h; page at 14.4)", burns, "none", 12, 8),
        _panel(
            5,
            "Regime (1 = wedding day)",
            [('max(wedsync_regime{regime="wedding_day"})', "wedding day")],
            "none",
            0,
            16,
        ),
    ]
    return {
        "title": title,
        "uid": "wedsync-api-red",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "tags": ["wedsync", "slo"],
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {
                    "name": "route",
                    "type": "query",
                    "datasource": _DS,
                    "query": "label_values(wedsync_http_requests_total, route)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                },
            ]
        },
        "panels": panels,
    }
