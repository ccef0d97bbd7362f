"""Alert detection on a simulated clock: how long after a burst starts does a page
fire, and does anything fire that should not?

Traffic: 20 critical requests per 10 s window (2 req/s) with three quiet days before
each scenario (the longest alert window is full), evaluated after every closed window (evaluation lag ≤ 10 s), against the
availability objective (99.9 %; wedding day 99.95 %) and the critical latency objective
(99 % under 100 ms on wedding days). Three rule sets run on the same windows:

* **ours** — the workbook windows plus a 30 s "still burning" confirmation and a 45 s hold;
* **workbook** — the SRE workbook's rules as written (no hold);
* **pyrra** — Pyrra's hold times (`for: 2m` on the 14x page, 15m on the 6x one).

Expected by the workbook's formula at 99.9 %: 52 s for a 100 % burst, 8.6 min at 10 %.

Run: `make bench-detection` (no servers needed).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, versions, write_result
from wedsync_perf.calendar import Regime
from wedsync_perf.monitoring.alerts import AlertEngine, burn_conditions
from wedsync_perf.monitoring.recorder import DEFAULT_EDGES, Window
from wedsync_perf.monitoring.slo import DEFAULT_SLOS, WORKBOOK_WINDOWS, SloConfig, SloTracker
from wedsync_perf.testing import synthetic_window

W = 10.0
PER_WINDOW = 20
QUIET = 3 * 24 * 360  # windows of clean history before each scenario (3 days)
EDGES = tuple(sorted(set(DEFAULT_EDGES) | DEFAULT_SLOS.thresholds_s()))


def rule_sets() -> dict[str, SloConfig]:
    workbook = tuple(w.model_copy(update={"for_s": 0, "confirm_s": None}) for w in WORKBOOK_WINDOWS)
    pyrra_holds = {3600: 120, 21600: 900, 86400: 3600, 259200: 10800}
    pyrra = tuple(
        w.model_copy(update={"for_s": pyrra_holds[int(w.long_s)], "confirm_s": None})
        for w in WORKBOOK_WINDOWS
    )
    return {
        "ours": DEFAULT_SLOS,
        "workbook": DEFAULT_SLOS.model_copy(update={"windows": workbook}),
        "pyrra": DEFAULT_SLOS.model_copy(update={"windows": pyrra}),
    }


def window(i: int, bad: int, kind: str) -> Window:
    good = PER_WINDOW - bad
    if kind == "errors":
        return synthetic_window(i * W, EDGES, fast=good, errors=bad)
    return synthetic_window(i * W, EDGES, fast=good, slow=bad, slow_s=0.15)  # 150 ms > 100


def run(
    config: SloConfig, pattern: list[tuple[float, str]], regime: Regime
) -> dict[str, float | None]:
    """First page and first ticket, in seconds from the start of `pattern`."""
    tracker = SloTracker(config, EDGES, W)
    engine = AlertEngine()
    first: dict[str, float | None] = {"page": None, "ticket": None}
    quiet = window(0, 0, "errors").series  # the tracker only reads it: share one
    for i in range(QUIET):
        tracker.ingest(Window(i * W, quiet))
    owed = 0.0  # fractions of a bad request carried over: 0.5 % of 20 is 1 in 10 windows
    for j, (bad_fraction, kind) in enumerate(pattern):
        i = QUIET + j
        owed += PER_WINDOW * bad_fraction
        bad = int(owed + 1e-9)
        owed -= bad
        tracker.ingest(window(i, bad, kind))
        now = (i + 1) * W
        for alert in engine.update(burn_conditions(tracker, regime, now), now):
            if alert.state == "firing" and first[alert.severity] is None:
                first[alert.severity] = now - QUIET * W
    return first


def minutes(n: float) -> int:
    return int(n * 60 / W)


def main() -> None:
    scenarios: dict[str, tuple[list[tuple[float, str]], Regime]] = {
        "errors_100pct": ([(1.0, "errors")] * minutes(30), Regime.SEASON),
        "errors_10pct": ([(0.1, "errors")] * minutes(30), Regime.SEASON),
        "slow_100pct_wedding_day": ([(1.0, "slow")] * minutes(30), Regime.WEDDING_DAY),
        "blip_1min_100pct": (
            [(1.0, "errors")] * minutes(1) + [(0.0, "errors")] * minutes(60),
            Regime.SEASON,
        ),
        "burn_5x_for_24h": ([(0.005, "errors")] * minutes(24 * 60), Regime.SEASON),
    }
    results: dict[str, dict[str, dict[str, float | None]]] = {}
    for name, config in rule_sets().items():
        results[name] = {s: run(config, p, r) for s, (p, r) in scenarios.items()}
    ours = results["ours"]
    figures = {
        "fast_burn_detect_s": ours["errors_100pct"]["page"],
        "detect_s_10pct": ours["errors_10pct"]["page"],
        "slow_burst_detect_s_wedding_day": ours["slow_100pct_wedding_day"]["page"],
        "blip_alerts": sum(v is not None for v in ours["blip_1min_100pct"].values()),
        "pages_at_5x_burn": int(ours["burn_5x_for_24h"]["page"] is not None),
        "ticket_at_5x_burn_s": ours["burn_5x_for_24h"]["ticket"],
        "workbook_expected_s": {"errors_100pct": 51.8, "errors_10pct": 518.4},
        "by_rule_set": results,
        "traffic": {"window_s": W, "requests_per_window": PER_WINDOW, "quiet_days": 3},
        "versions": versions(),
        "machine": machine(),
    }
    path = write_result("detection", figures)
    print(f"{'scenario':26s} " + " ".join(f"{n:>22s}" for n in results))
    for scenario in scenarios:
        cells = []
        for name in results:
            first = results[name][scenario]
            page = "-" if first["page"] is None else f"{first['page']:.0f} s"
            ticket = "-" if first["ticket"] is None else f"{first['ticket']:.0f} s"
            cells.append(f"page {page:>7s} tkt {ticket:>7s}")
        print(f"{scenario:26s} " + " ".join(f"{c:>22s}" for c in cells))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
