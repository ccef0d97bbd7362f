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

The alerts are the evaluator's (`alerts.burn_conditions`) in PromQL: the same windows,
the same `>=` against the same bar, the pages' "still burning" check over the same
`confirm_s` (30 s by default) and the same hold (`for`). The rules assume 15 s scrapes
(the group's interval): a rate over 30 s then has two or three samples, and when a
missed scrape leaves it one, the rate is empty and the page waits for the next
evaluation — the confirmation fails closed. Shorter confirmations are refused; a
longer window here than in the evaluator would let a stopped burst keep paging (with
15 s scrapes, a one-minute blip pages under a 1 m confirmation and 45 s hold).
"""

from __future__ import annotations

from typing import Any

from wedsync_perf.calendar import Regime
from wedsync_perf.errors import InvalidValue
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


_SHORTEST_RATE_S = 30.0  # rate() needs two samples in its range: two 15 s scrapes


def _windows(config: SloConfig) -> list[float]:
    spans: set[float] = set()
    for i, window in enumerate(config.windows):
        spans |= {window.long_s, window.short_s}
        if window.confirm_s is not None:
            if window.confirm_s < _SHORTEST_RATE_S:
                raise InvalidValue(
                    f"windows.{i}.confirm_s",
                    window.confirm_s,
                    "at least 30 s: a rate needs two 15 s scrapes in its range (the rules "
                    "confirm over the same window as the in-process evaluator)",
                )
            spans.add(window.confirm_s)
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
    spans = [window.long_s, window.short_s]
    if window.confirm_s is not None:
        spans.append(window.confirm_s)
    checks = [f"{_record_name(span)}{{{match}}} >= {bar:.6g}" for span in spans]
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
    """A `promtool test rules` file, evaluated every 15 s as the rule group is: for the
    first availability objective, a day of clean traffic, then a lasting 100 % error
    burst must page within 2 minutes; the same history with a one-minute 100 % blip
    must not alert at all; and a two-minute burst pages, keeps paging while its last
    errors are inside the confirmation window and resolves at the first evaluation
    after they leave it (the evaluator's boundary with 15 s windows)."""
    objective = next(o for o in config.objectives if o.kind == "availability")
    page = next(w for w in config.windows if w.severity == "page")
    target, _ = objective.target(Regime.SEASON)
    selector = _selector(objective)
    base = "wedsync_http_requests_total{" + (selector + ", " if selector else "")
    step_s, per = 15, 30  # 15 s scrapes (the rules' assumption) of 2 requests/s
    day = 24 * 3600 // step_s  # a day of clean history: the blip stays under every bar
    after = 240  # samples after the event: one hour

    def series(ok: str, bad: str) -> list[dict[str, str]]:
        return [
            {"series": base + 'route="/t", status_class="2xx"}', "values": ok},
            {"series": base + 'route="/t", status_class="5xx"}', "values": bad},
            {"series": 'wedsync_regime{regime="season"}', "values": f"1x{day + 2 * after}"},
        ]

    def errors_for(samples: int) -> list[dict[str, str]]:
        """Clean, then `samples` scrapes of nothing but errors, then clean again."""
        return series(
            f"0+{per}x{day} {per * day}x{samples - 1} {per * (day + 1)}+{per}x{after}",
            f"0x{day} {per}+{per}x{samples - 1} {per * samples}x{after}",
        )

    burst = series(f"0+{per}x{day} {per * day}x{after}", f"0x{day} {per}+{per}x{after}")
    blip = errors_for(4)  # one minute
    stop = 8  # two minutes: pages, under the 6 h page's bar
    # The last errors arrive between the scrapes at `last - 15 s` and `last`; the
    # confirmation's range [t - confirm_s, t] holds them until it no longer holds the
    # scrape before — as the evaluator's [now - confirm_s, now) holds the 15 s window
    # [last - 15 s, last).
    last_s = (day + stop) * step_s
    inside_s = last_s - step_s + (page.confirm_s or 0.0)
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
        "evaluation_interval": "15s",
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
            {
                "interval": f"{step_s}s",
                "input_series": errors_for(stop),
                "alert_rule_test": [
                    {
                        "eval_time": f"{int(t)}s",
                        "alertname": "WedsyncSLOBurnRate",
                        "exp_alerts": exp,
                    }
                    for t, exp in (
                        (last_s, [{"exp_labels": labels, "exp_annotations": annotations}]),
                        (inside_s, [{"exp_labels": labels, "exp_annotations": annotations}]),
                        (inside_s + 15, []),
                    )
                ],
            },
        ],
    }
