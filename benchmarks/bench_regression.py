"""Regression detection on synthetic benchmark runs with known slowdowns.

Each run has 500 latencies from a skewed distribution (lognormal, median 20 ms, plus a
2 % slow tail at 4x), scaled by run-to-run noise (lognormal, σ = 2 %: a shared 2-core
machine). Slowdowns of 0 % (A/A), 5 %, 10 % and 30 % multiply every latency.

* **pairwise** (one baseline run vs one current run, 300 trials each): ours (`compare`:
  Mann-Whitney U at 0.01 + p95 ≥ +5 % + bootstrap CI of the p95 ratio above 1) beside
  a Welch t-test on means at 0.05 (the shape of Mozilla Perfherder's test) and
  pytest-benchmark's fixed rule (`--benchmark-compare-fail=mean:5%`).
* **history** (30 runs, then the shift; 100 series each, 200 A/A histories of 35 runs):
  `change_points` over the per-run p95 — how many runs after the shift until it is
  flagged, and how often an A/A history is flagged at all — confirmed on the pooled raw
  samples (ours) and, for comparison, by a t-test on the p95 values alone (Otava's way).

Run: `make bench-regression` (no servers needed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, versions, write_result
from wedsync_perf.monitoring.regression import BenchRun, change_points, compare

N = 500
TRIALS = 300
SERIES = 200
SHIFTS = (0, 5, 10, 30)
ROUTE = "GET /weddings/{wedding_id}/timeline"


def run(rng: np.random.Generator, shift_pct: float) -> np.ndarray:
    base = rng.lognormal(np.log(20), 0.35, N)
    tail = rng.random(N) < 0.02
    base[tail] *= 4
    return base * rng.lognormal(0, 0.02) * (1 + shift_pct / 100)


def ours(a: np.ndarray, b: np.ndarray) -> bool:
    [result] = compare(BenchRun({ROUTE: a.tolist()}), BenchRun({ROUTE: b.tolist()}), resamples=200)
    return result.regression


def welch_t(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(b.mean() > a.mean() and stats.ttest_ind(a, b, equal_var=False).pvalue < 0.05)


def fixed_5pct(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(b.mean() > a.mean() * 1.05)


def pairwise(rng: np.random.Generator) -> dict[str, dict[int, float]]:
    rates: dict[str, dict[int, float]] = {"ours": {}, "welch_t_test": {}, "fixed_mean_5pct": {}}
    for shift in SHIFTS:
        hits = dict.fromkeys(rates, 0)
        for _ in range(TRIALS):
            a, b = run(rng, 0), run(rng, shift)
            hits["ours"] += ours(a, b)
            hits["welch_t_test"] += welch_t(a, b)
            hits["fixed_mean_5pct"] += fixed_5pct(a, b)
        for name in rates:
            rates[name][shift] = round(hits[name] / TRIALS, 4)
    return rates


def history(rng: np.random.Generator, pooled: bool) -> dict[str, object]:
    """Change points over per-run p95s; `pooled`: confirmed on the runs' raw samples."""

    def detect(runs: list[np.ndarray]) -> list[int]:
        values = [float(np.quantile(r, 0.95)) for r in runs]
        return [c.index for c in change_points(values, samples=runs if pooled else None)]

    runs_to_detect: dict[int, float | None] = {}
    detected_within_5: dict[int, float] = {}
    for shift in SHIFTS[1:]:
        delays = []
        for _ in range(SERIES // 2):
            runs = [run(rng, 0) for _ in range(30)]
            found = None
            for k in range(1, 11):
                runs.append(run(rng, shift))
                if any(abs(i - 30) <= 1 for i in detect(runs)):
                    found = k
                    break
            delays.append(found)
        hit = [d for d in delays if d is not None]
        runs_to_detect[shift] = float(np.median(hit)) if hit else None
        detected_within_5[shift] = round(
            sum(d is not None and d <= 5 for d in delays) / len(delays), 4
        )
    flagged = sum(bool(detect([run(rng, 0) for _ in range(35)])) for _ in range(SERIES))
    return {
        "median_runs_to_detect": runs_to_detect,
        "detected_within_5_runs": detected_within_5,
        "false_positive_rate": round(flagged / SERIES, 4),
    }


def main() -> None:
    rng = np.random.default_rng(20261129)
    pair = pairwise(rng)
    hist = history(rng, pooled=True)
    hist_p95_only = history(rng, pooled=False)
    figures = {
        # The goal's terms: a shift flagged within 5 runs of history; A/A histories.
        "detection_rate": {str(k): v for k, v in hist["detected_within_5_runs"].items()},
        "false_positive_rate": hist["false_positive_rate"],
        "pairwise": {name: {str(k): v for k, v in r.items()} for name, r in pair.items()},
        "history": hist,
        "history_p95_values_only": hist_p95_only,
        "setup": {
            "samples_per_run": N,
            "run_noise_sigma": 0.02,
            "trials": TRIALS,
            "series": SERIES,
        },
        "versions": versions("numpy", "scipy"),
        "machine": machine(),
    }
    path = write_result("regression", figures)
    print(
        f"{'pairwise':18s} " + " ".join(f"{s:>6d}%" for s in SHIFTS) + "   (0 % = false positives)"
    )
    for name, rates in pair.items():
        print(f"{name:18s} " + " ".join(f"{rates[s]:7.1%}" for s in SHIFTS))
    for name, h in (("history (pooled)", hist), ("history (p95s only)", hist_p95_only)):
        print(f"{name}: detected within 5 runs {h['detected_within_5_runs']},"
              f" median runs {h['median_runs_to_detect']}, A/A false positives"
              f" {h['false_positive_rate']:.1%}")  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
