"""Quantile accuracy on a heavy-tailed latency mix: relative error of p50/p95/p99/p99.9
against the exact order statistics, for our sketch, Prometheus' default buckets read
with `histogram_quantile`'s linear interpolation, and the `ddsketch` package.

The mix: lognormal (median 40 ms) plus a 2 % slow mode around 400 ms — a timeline route
with occasional cold queries. Run: `make bench-accuracy`.
"""

from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, versions, write_result
from wedsync_perf.monitoring.sketch import LatencySketch

SAMPLES = 200_000
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99, "p999": 0.999}
# prometheus_client's default Histogram buckets (also OTel's new HTTP semconv buckets).
PROM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def histogram_quantile(q: float, buckets: tuple[float, ...], counts: list[int]) -> float:
    """PromQL's histogram_quantile: linear interpolation inside the bucket."""
    total = sum(counts)
    rank = q * total
    cumulative, lower = 0, 0.0
    for upper, count in zip((*buckets, math.inf), counts, strict=True):
        if cumulative + count >= rank:
            if math.isinf(upper):
                return buckets[-1]
            return lower + (upper - lower) * ((rank - cumulative) / count if count else 0)
        cumulative += count
        lower = upper
    return buckets[-1]


def main() -> None:
    rng = random.Random(42)
    values = [
        rng.lognormvariate(math.log(0.4), 0.3) if rng.random() < 0.02
        else rng.lognormvariate(math.log(0.04), 0.5)
        for _ in range(SAMPLES)
    ]  # fmt: skip
    ordered = sorted(values)
    exact = {name: ordered[math.floor(q * (SAMPLES - 1))] for name, q in QUANTILES.items()}

    ours = LatencySketch()
    started = time.perf_counter()
    for v in values:
        ours.add(v)
    ours_us = (time.perf_counter() - started) / SAMPLES * 1e6

    from ddsketch import DDSketch

    theirs = DDSketch(0.01)
    started = time.perf_counter()
    for v in values:
        theirs.add(v)
    ddsketch_us = (time.perf_counter() - started) / SAMPLES * 1e6

    from bisect import bisect_left

    counts = [0] * (len(PROM_BUCKETS) + 1)
    for v in values:
        counts[bisect_left(PROM_BUCKETS, v)] += 1

    estimates = {
        "wedsync_perf": {n: ours.quantile(q) or 0.0 for n, q in QUANTILES.items()},
        "ddsketch": {n: float(theirs.get_quantile_value(q) or 0.0) for n, q in QUANTILES.items()},
        "prometheus_buckets": {
            n: histogram_quantile(q, PROM_BUCKETS, counts) for n, q in QUANTILES.items()
        },
    }
    rel_error = {
        store: {n: round(abs(v - exact[n]) / exact[n], 5) for n, v in found.items()}
        for store, found in estimates.items()
    }
    figures = {
        "samples": SAMPLES,
        "exact_ms": {n: round(v * 1000, 3) for n, v in exact.items()},
        "rel_error": rel_error,
        "insert_us": {"wedsync_perf": round(ours_us, 3), "ddsketch": round(ddsketch_us, 3)},
        "bytes": {"wedsync_perf": len(ours.to_bytes()), "bins": ours.bins},
        "target_rel_error": 0.01,
        "versions": versions("ddsketch", "prometheus-client"),
        "machine": machine(),
    }
    path = write_result("accuracy", figures)
    table = Table(title=f"Relative error vs exact quantiles, {SAMPLES:,} latencies")
    table.add_column("store")
    for name in QUANTILES:
        table.add_column(name, justify="right")
    for store, errors in rel_error.items():
        table.add_row(store, *(f"{errors[n]:.2%}" for n in QUANTILES))
    Console().print(table)
    print(
        f"exact ms: {figures['exact_ms']}; insert µs: {figures['insert_us']};"
        f" sketch {figures['bytes']['wedsync_perf']} bytes; wrote {path}"
    )


if __name__ == "__main__":
    main()
