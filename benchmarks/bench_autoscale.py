"""Autoscaling policies on a season trace (`wedsync_perf.scaling.scenario.Scenario`):
five weeks from Monday 3 May 2027 (two of them history for the forecasters, three
scored), season traffic with four wedding Saturdays, a 1.5-minute rush at 10:00 on each,
one replica's service rate from the reference API's load test when
`capacity-loadtest.json` exists (`wedsync-perf capacity measure`), else 900 req/s (what
it measured on this machine). 90 s pod start-up, 15 s metric lag, 15 s sync.

Reports per policy: violation minutes (p95 over 200 ms, over 100 ms within an hour of a
wedding-day rush), instance-hours, scale events, scale-downs within an hour of a rush;
and ours with the forecast deliberately 20 % and 50 % too high and too low.

Run: `make bench-autoscale` (no servers needed).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, versions, write_result
from wedsync_perf.scaling.capacity import fit_usl
from wedsync_perf.scaling.scenario import POLICIES, Scenario

LOAD_TEST = Path("capacity-loadtest.json")


def replica_rate() -> tuple[float, str]:
    if LOAD_TEST.exists():
        points = json.loads(LOAD_TEST.read_text())["points"]
        fit = fit_usl([p["concurrency"] for p in points], [p["throughput_rps"] for p in points])
        return fit.peak_rps_ci[0], f"{LOAD_TEST} (USL peak, low end of its 90 % interval)"
    return 900.0, "default (900 req/s, measured by capacity measure on this machine)"


def main() -> None:
    mu, source = replica_rate()
    scenario = Scenario(mu_rps=mu)
    started = time.perf_counter()
    results = {name: scenario.run(name) for name in POLICIES}
    errors = {}
    for label, bias in (("plus20", 1.2), ("minus20", 0.8), ("plus50", 1.5), ("minus50", 0.5)):
        run = scenario.run("wedding", forecast_bias=bias)
        errors[label] = run.as_dict()
    elapsed = time.perf_counter() - started
    plot = Path(__file__).resolve().parent / "results" / "autoscale_week.png"
    scenario.plot({k: v for k, v in results.items() if k != "wedding_hold_all_day"}, plot)
    hpa, ours, static = results["hpa"], results["wedding"], results["static"]
    figures = {
        "violation_minutes": {k: v.violation_minutes for k, v in results.items()},
        "instance_hours": {k: round(v.instance_hours, 1) for k, v in results.items()},
        "scale_events": {k: v.scale_events for k, v in results.items()},
        "scale_downs_near_rush": {k: v.scale_downs_in_wedding_windows for k, v in results.items()},
        "forecast_error_violations": {k: v["violation_minutes"] for k, v in errors.items()},
        "forecast_error_runs": errors,
        "vs_hpa": {
            "violation_reduction": None
            if not hpa.violation_minutes
            else round(1 - ours.violation_minutes / hpa.violation_minutes, 3),
            "extra_instance_hours": round(ours.instance_hours / hpa.instance_hours - 1, 3),
        },
        "vs_static": {
            "instance_hours_saved": round(1 - ours.instance_hours / static.instance_hours, 3)
        },
        "scenario": {
            "start": str(scenario.start),
            "days": scenario.days,
            "scored_days": scenario.days - scenario.warmup_days,
            "replica_rps": round(mu, 1),
            "replica_rps_source": source,
            "utilisation_target": scenario.utilisation,
            "rush_minutes": scenario.rush_minutes,
        },
        "simulation_seconds": round(elapsed, 1),
        "plot": str(plot.name),
        "versions": versions("numpy", "scipy", "matplotlib"),
        "machine": machine(),
    }
    path = write_result("autoscale", figures)
    print(f"replica: {mu:.0f} req/s from {source}")
    print(
        f"{'policy':22s} {'violation min':>13s} {'instance-h':>11s} {'events':>7s} {'downs near rush':>16s}"
    )
    for name, r in results.items():
        print(f"{name:22s} {r.violation_minutes:13d} {r.instance_hours:11.1f} {r.scale_events:7d}"
              f" {r.scale_downs_in_wedding_windows:16d}")  # fmt: skip
    for label, run in errors.items():
        print(f"wedding, forecast {label:8s} {run['violation_minutes']:6d} violation min"
              f"  {run['instance_hours']:9.1f} instance-h")  # fmt: skip
    print(f"wrote {path} and {plot}")


if __name__ == "__main__":
    main()
