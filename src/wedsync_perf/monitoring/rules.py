"""Prometheus recording and alerting rules for the same SLOs (Sloth/Pyrra style), and a
`promtool test rules` file that proves a fast burn pages and a blip does not.

Recording rules give each objective's bad-request ratio over every window the alerts
use (`wedsync:slo_bad:ratio_rate5m` …), from the exposition of `RecorderCollector`:
availability from `wedsync_http_requests_total{status_class="5xx"}`, latency from the
histogram bucket whose `le` is the objective's threshold (the recorder makes every
threshold an edge, so the count is exact). Wedding-day objectives are selected with the
`wedsync_regime` gauge the monitor exports, so Prometheus switches targets on the
same days the app does — including dates booked in the database, which a PromQL
`day_of_week()` could not know.

The page rules' 30 s confirmation becomes a 1 m rate (the shortest window a rate over
15 s scrapes can take), and the hold (`for`) is kept.
"""

from __future__ import annotations

from typing import Any

from wedsync_perf.calendar import Regime
from wedsync_perf.monitoring.slo import BurnWindow, Objective, SloConfig, _span

__all__ = ["prometheus_rules", "rules_test"]

_WEDDING = 'max(wedsync_regime{regime="wedding_day"}) == 1'


def _selector(objective: Objective, extra: str = "") -> str:
    parts = []
    if objective.priority is not None:
        parts.append(f'priority="{objective.priority.value}"')
    if objective.route is not None:
        parts.append(f'route="{objective.route}"')
    if extra:
        parts.append(extra)
    return ", ".join(parts)


def _bad_ratio(objective: Objective, threshold_s: float | None, window: str) -> str:
    if objective.kind == "availability":
        sel_bad = _selector(objective, 'status_class="5xx"')
        sel_all = _selector(objective)
        return (
            f"sum(rate(wedsync_http_requests_total{{{sel_bad}}}[{window}]))"
            f" / sum(rate(wedsync_http_requests_total{{{sel_all}}}[{window}]))"
        )
    sel = _selector(objective, 'status_class!="5xx"')
    sel_le = _selector(objective, f'status_class!="5xx", le="{threshold_s:g}"')
    return (
        f"1 - sum(rate(wedsync_http_request_duration_seconds_bucket{{{sel_le}}}[{window}]))"
        f" / sum(rate(wedsync_http_request_duration_seconds_count{{{sel}}}[{window}]))"
    )


def _windows(config: SloConfig) -> list[float]:
    spans = {60.0}
    for window in config.windows:
        spans |= {window.long_s, window.short_s}
    return sorted(spans)


def _regimes(objective: Objective) -> list[tuple[str, Regime]]:
    if objective.wedding_day is None:
        return [("any", Regime.SEASON)]
    return [("normal", Regime.SEASON), ("wedding_day", Regime.WEDDING_DAY)]


def _record_name(window_s: float) -> str:
    return f"wedsync:slo_bad:ratio_rate{_span(window_s)}"


def prometheus_rules(config: SloConfig) -> dict[str, Any]:
    """The rule file (as a dict; dump it as YAML) for `config`."""
    recording: list[dict[str, Any]] = []
    alerting: list[dict[str, Any]] = []
    for objective in config.objectives:
        thresholds: list[float | None] = [*sorted(objective.thresholds_s())] or [None]
        for threshold in thresholds:
            labels = {"objective": objective.name}
            if threshold is not None:
                labels["threshold"] = f"{threshold:g}"
            recording.extend(
                {
                    "record": _record_name(window_s),
                    "expr": _bad_ratio(objective, threshold, _span(window_s)),
                    "labels": labels,
                }
                for window_s in _windows(config)
            )
        alerting.extend(
            _alert(objective, regime_label, regime, window)
            for regime_label, regime in _regimes(objective)
            for window in config.windows
        )
    # One group: rules of a group run in order, so each alert reads the ratios of the
    # same evaluation (across groups it would read the previous one: a step later).
    return {"groups": [{"name": "wedsync-slo", "interval": "15s", "rules": recording + alerting}]}


def _alert(
    objective: Objective, regime_label: str, regime: Regime, window: BurnWindow
) -> dict[str, Any]:
    target, threshold = objective.target(regime)
    match = f'objective="{objective.name}"'
    if threshold is not None:
        match += f', threshold="{threshold:g}"'
    bar = window.burn * (1 - target)
    checks = [
        f"{_record_name(window.long_s)}{{{match}}} > {bar:.6g}",
        f"{_record_name(window.short_s)}{{{match}}} > {bar:.6g}",
    ]
    if window.confirm_s is not None:
        checks.append(f"{_record_name(60)}{{{match}}} > {bar:.6g}")
    expr = " and ".join(f"({c})" for c in checks)
    if regime_label == "wedding_day":
        expr = f"({expr}) and on() ({_WEDDING})"
    elif regime_label == "normal":
        expr = f"({expr}) unless on() ({_WEDDING})"
    rule: dict[str, Any] = {
        "alert": "WedsyncSLOBurnRate",
        "expr": expr,
        "labels": {
            "severity": window.severity,
            "objective": objective.name,
            "window": window.label,
            "regime": regime_label,
        },
        "annotations": {
            "summary": (
                f"{objective.name}: error budget burning over {window.burn:g}x"
                f" ({window.label}, objective {target:.2%})"
            ),
        },
    }
    if window.for_s:
        rule["for"] = f"{window.for_s:g}s"
    return rule


def rules_test(config: SloConfig, rule_file: str) -> dict[str, Any]:
    """A `promtool test rules` file: for the first availability objective, three days
    of clean traffic (the longest alert window is full), then a lasting 100 % error
    burst must page within 2 minutes; the same history with a one-minute 100 % blip
    must not alert at all."""
    objective = next(o for o in config.objectives if o.kind == "availability")
    page = next(w for w in config.windows if w.severity == "page")
    target, _ = objective.target(Regime.SEASON)
    selector = _selector(objective)
    base = "wedsync_http_requests_total{" + (selector + ", " if selector else "")
    step_s, rate = 30, 60  # 30 s samples of 2 requests/s
    hour = 24 * 3600 // step_s  # a day of clean history: the blip stays under every bar

    def series(ok: str, bad: str) -> list[dict[str, str]]:
        return [
            {"series": base + 'route="/t", status_class="2xx"}', "values": ok},
            {"series": base + 'route="/t", status_class="5xx"}', "values": bad},
            {"series": 'wedsync_regime{regime="season"}', "values": f"1x{hour + 200}"},
        ]

    ok_total = rate * hour
    after = 120  # samples after the event: one hour
    blip = series(
        f"0+{rate}x{hour} {ok_total}x1 {ok_total + rate}+{rate}x{after}",
        f"0x{hour} {rate}+{rate}x1 {2 * rate}x{after}",
    )
    burst = series(f"0+{rate}x{hour} {ok_total}x{after}", f"0x{hour} {rate}+{rate}x{after}")
    labels = {
        "severity": page.severity,
        "objective": objective.name,
        "window": page.label,
        "regime": "normal" if objective.wedding_day is not None else "any",
    }
    annotations = {
        "summary": (
            f"{objective.name}: error budget burning over {page.burn:g}x"
            f" ({page.label}, objective {target:.2%})"
        )
    }
    return {
        "rule_files": [rule_file],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": f"{step_s}s",
                "input_series": burst,
                "alert_rule_test": [
                    {"eval_time": "24h", "alertname": "WedsyncSLOBurnRate", "exp_alerts": []},
                    {
                        "eval_time": "24h2m",
                        "alertname": "WedsyncSLOBurnRate",
                        "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}],
                    },
                ],
            },
            {
                "interval": f"{step_s}s",
                "input_series": blip,
                "alert_rule_test": [
                    {"eval_time": f"24h{m}m", "alertname": "WedsyncSLOBurnRate", "exp_alerts": []}
                    for m in (1, 2, 3, 5, 10, 30, 59)
                ],
            },
        ],
    }
