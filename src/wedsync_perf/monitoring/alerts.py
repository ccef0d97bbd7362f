"""Alert rules and the alert lifecycle: pending → firing → resolved.

Two kinds of rule produce `Condition`s at each evaluation:

* **burn rate** (`burn_conditions`): the SRE workbook's multi-window, multi-burn-rate
  rules over each SLO (see `slo.WORKBOOK_WINDOWS`);
* **thresholds** (`ThresholdRule`): a value compared with a bar — p95 of a route over
  its target, error rate, cache hit ratio, pool saturation, replica lag — any function
  the application registers.

`AlertEngine` turns conditions into alerts, one per fingerprint (rule name + labels),
so a condition that stays true is one alert however often it is evaluated. Grouping,
silences, inhibition and repeat notifications are Alertmanager's job (`delivery`), not
re-implemented here.

What an alert carries is built from route templates, objective names, figures and the
regime only: never a raw path, a query, a token or a host name.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from wedsync_perf.calendar import Regime
from wedsync_perf.monitoring.slo import SloTracker

__all__ = [
    "Alert",
    "AlertEngine",
    "Condition",
    "ThresholdRule",
    "burn_conditions",
    "route_p95_rules",
    "windowed_ratio",
]

State = Literal["pending", "firing", "resolved"]


@dataclass(frozen=True)
class Condition:
    """One rule's verdict for one label set at one evaluation."""

    name: str
    severity: str
    labels: Mapping[str, str]
    active: bool
    value: float | None
    for_s: float
    summary: str

    @property
    def fingerprint(self) -> str:
        text = self.name + "".join(f"\x00{k}={v}" for k, v in sorted(self.labels.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Alert:
    fingerprint: str
    name: str
    severity: str
    labels: dict[str, str]
    summary: str
    value: float | None
    state: State
    active_since: float
    fired_at: float | None = None
    resolved_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "name": self.name,
            "severity": self.severity,
            "labels": dict(self.labels),
            "summary": self.summary,
            "value": None if self.value is None else round(self.value, 4),
            "state": self.state,
            "active_since": self.active_since,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
        }


class AlertEngine:
    """Alert state per fingerprint. `update` returns the alerts that changed to firing
    or to resolved in this evaluation: what a notifier should send."""

    def __init__(self, *, history: int = 200) -> None:
        self._alerts: dict[str, Alert] = {}
        self.resolved: deque[Alert] = deque(maxlen=history)

    def update(self, conditions: Iterable[Condition], now: float) -> list[Alert]:
        changed: list[Alert] = []
        seen: set[str] = set()
        for condition in conditions:
            fingerprint = condition.fingerprint
            seen.add(fingerprint)
            alert = self._alerts.get(fingerprint)
            if not condition.active:
                if alert is not None:
                    self._end(alert, now, changed)
                continue
            if alert is None:
                alert = self._alerts[fingerprint] = Alert(
                    fingerprint, condition.name, condition.severity, dict(condition.labels),
                    condition.summary, condition.value, "pending", now,
                )  # fmt: skip
            alert.value, alert.summary = condition.value, condition.summary
            if alert.state == "pending" and now - alert.active_since >= condition.for_s:
                alert.state, alert.fired_at = "firing", now
                changed.append(alert)
        for fingerprint in list(self._alerts):  # a rule whose labels vanished
            if fingerprint not in seen:
                self._end(self._alerts[fingerprint], now, changed)
        return changed

    def _end(self, alert: Alert, now: float, changed: list[Alert]) -> None:
        del self._alerts[alert.fingerprint]
        if alert.state == "firing":  # a pending alert that clears never fired: no news
            alert.state, alert.resolved_at = "resolved", now
            self.resolved.append(alert)
            changed.append(alert)

    def active(self) -> list[Alert]:
        return sorted(self._alerts.values(), key=lambda a: (a.state != "firing", a.active_since))

    def firing(self) -> list[Alert]:
        return [a for a in self._alerts.values() if a.state == "firing"]


def burn_conditions(tracker: SloTracker, regime: Regime, now: float) -> list[Condition]:
    """Every (objective × burn window) rule of the tracker's config, evaluated at `now`."""
    config = tracker.config
    conditions = []
    for objective in config.objectives:
        target, threshold = objective.target(regime)
        for window in config.windows:
            long_burn, _ = tracker.burn_rate(objective, regime, window.long_s, now)
            short_burn, short_requests = tracker.burn_rate(objective, regime, window.short_s, now)
            burning = (
                long_burn is not None
                and short_burn is not None
                and long_burn >= window.burn
                and short_burn >= window.burn
                and short_requests >= config.min_requests
            )
            if burning and window.confirm_s is not None:
                confirm, _ = tracker.burn_rate(objective, regime, window.confirm_s, now)
                burning = confirm is not None and confirm >= window.burn
            bar = f" under {threshold * 1000:g} ms" if threshold is not None else " not 5xx"
            conditions.append(
                Condition(
                    name="SLOBurnRate",
                    severity=window.severity,
                    labels={
                        "objective": objective.name,
                        "window": window.label,
                        "regime": regime.value,
                    },
                    active=burning,
                    value=long_burn,
                    for_s=window.for_s,
                    summary=(
                        f"{objective.name}: error budget burning at {long_burn or 0:.1f}x over"
                        f" {window.label} (alert at {window.burn:g}x; objective"
                        f" {target:.2%}{bar}, {regime.value})"
                    ),
                )
            )
    return conditions


@dataclass
class ThresholdRule:
    """`value()` compared with `threshold` (`above`: fire when greater). A value of None
    (nothing measured) never fires."""

    name: str
    severity: str
    value: Callable[[], float | None]
    threshold: float
    above: bool = True
    for_s: float = 120.0
    labels: Mapping[str, str] = field(default_factory=dict)
    describe: str = ""

    def condition(self) -> Condition:
        value = self.value()
        active = value is not None and (
            value > self.threshold if self.above else value < self.threshold
        )
        relation = "over" if self.above else "under"
        shown = "n/a" if value is None else f"{value:.4g}"
        return Condition(
            self.name, self.severity, dict(self.labels), active, value, self.for_s,
            f"{self.describe or self.name}: {shown} ({relation} {self.threshold:g} fires)",
        )  # fmt: skip


def route_p95_rules(
    routes: Iterable[Mapping[str, Any]], target_ms: Callable[[str], float], for_s: float = 300.0
) -> list[Condition]:
    """One condition per route of a summary (`Monitor.summary(...)["routes"]`): its p95
    over the target its priority has in the current regime. A dashboard-grade rule: the
    SLO burn rules are what should page."""
    conditions = []
    for route in routes:
        p95, target = route.get("p95_ms"), target_ms(route["priority"])
        conditions.append(
            Condition(
                name="RouteP95OverTarget",
                severity="ticket",
                labels={"route": route["route"], "method": route["method"]},
                active=p95 is not None and route["count"] >= 20 and p95 > target,
                value=p95,
                for_s=for_s,
                summary=f"{route['method']} {route['route']}: p95 {p95 or 0:.1f} ms over {target:g} ms",
            )
        )
    return conditions


def windowed_ratio(
    read: Callable[[], tuple[int, int]], *, span: int = 30, min_events: int = 100
) -> Callable[[], float | None]:
    """A rule value from cumulative counters: `read()` gives (good, total) so far; the
    returned function gives good/total over its last `span` calls (one per evaluation
    round: 30 = 5 minutes of 10 s windows), None below `min_events`."""
    samples: deque[tuple[int, int]] = deque(maxlen=span + 1)

    def value() -> float | None:
        samples.append(read())
        good = samples[-1][0] - samples[0][0]
        total = samples[-1][1] - samples[0][1]
        return good / total if total >= min_events else None

    return value
