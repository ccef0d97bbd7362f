"""Performance regression detection: one run against a baseline, and change points over
a route's history.

* `compare(baseline, current)`: per route, a one-sided Mann-Whitney U test (latency
  distributions are skewed: a t-test on means is what gives Mozilla's Perfherder its
  12.5 % false alerts) **and** a minimum effect on the p95, with a bootstrap confidence
  interval of the p95 ratio. Significant but tiny is not a regression; large but noisy
  is not either.
* `change_points(values)`: e-divisive means (Matteson & James) to locate the split
  that best separates a series of per-run p95s, confirmed at p < 0.001 with a minimum
  relative shift, applied recursively — the method of Hunter / Apache Otava, whose
  maintainers moved to p = 0.001 after single outliers made change points at 0.01.
  Confirmed by Welch's t-test on the p95s, or, given each run's raw samples, by a U
  test on the pooled latencies of both sides (far more power per run).

Runs are JSON in the format the project's benchmarks write (`BenchRun`), so a CI job can
gate on `wedsync-perf regress --baseline A.json --current B.json` (exit 1 on a
regression).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from wedsync_perf.errors import ConfigError, InvalidValue

__all__ = [
    "FORMAT",
    "BenchRun",
    "ChangePoint",
    "RouteComparison",
    "change_points",
    "compare",
]

FORMAT = "wedsync-perf-bench/1"


@dataclass
class BenchRun:
    """Latency samples (ms) per route of one run, plus free-form context."""

    routes: dict[str, list[float]]
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"format": FORMAT, "name": self.name, "meta": self.meta,
             "routes": {r: {"samples_ms": [round(v, 4) for v in s]} for r, s in self.routes.items()}},
            indent=1,
        )  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> BenchRun:
        """Read a run; `ConfigError` names the file and what is wrong with it."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(str(path), f"cannot read a benchmark run: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(str(path), f'expected "format": "{FORMAT}"')
        routes: dict[str, list[float]] = {}
        for route, entry in (data.get("routes") or {}).items():
            samples = entry.get("samples_ms") if isinstance(entry, dict) else None
            if not isinstance(samples, list) or not all(
                isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in samples
            ):
                raise ConfigError(str(path), f"routes.{route}.samples_ms: a list of ms ≥ 0")
            routes[route] = [float(v) for v in samples]
        return cls(routes, str(data.get("name", "")), dict(data.get("meta") or {}))


@dataclass(frozen=True)
class RouteComparison:
    route: str
    baseline_p95_ms: float
    current_p95_ms: float
    p95_ratio: float
    ratio_ci: tuple[float, float]  # 95 % bootstrap interval of the p95 ratio
    p_value: float  # one-sided Mann-Whitney U: current slower than baseline
    regression: bool
    improvement: bool
    reason: str


def _p95(values: np.ndarray[Any, Any]) -> float:
    return float(np.quantile(values, 0.95))


def compare(
    baseline: BenchRun,
    current: BenchRun,
    *,
    alpha: float = 0.01,
    min_effect: float = 0.05,
    min_samples: int = 30,
    resamples: int = 400,
    seed: int = 0,
) -> list[RouteComparison]:
    """Routes present in both runs with at least `min_samples` samples each. A route
    regresses when the U test says current is slower (p < `alpha`) and the p95 grew by
    at least `min_effect`; the bootstrap interval of the p95 ratio comes with it."""
    rng = np.random.default_rng(seed)
    results = []
    for route in sorted(set(baseline.routes) & set(current.routes)):
        a = np.asarray(baseline.routes[route], dtype=float)
        b = np.asarray(current.routes[route], dtype=float)
        if len(a) < min_samples or len(b) < min_samples:
            continue
        base_p95, cur_p95 = _p95(a), _p95(b)
        ratio = cur_p95 / base_p95 if base_p95 > 0 else math.inf
        boot_a = np.quantile(rng.choice(a, (resamples, len(a))), 0.95, axis=1)
        boot_b = np.quantile(rng.choice(b, (resamples, len(b))), 0.95, axis=1)
        ratios = boot_b / np.maximum(boot_a, 1e-12)
        low, high = (float(x) for x in np.quantile(ratios, [0.025, 0.975]))
        slower = float(stats.mannwhitneyu(b, a, alternative="greater").pvalue)
        faster = float(stats.mannwhitneyu(b, a, alternative="less").pvalue)
        # The interval is reported, not required: a p95 from a few hundred samples is
        # too noisy for its interval to clear 1 at a 10 % shift (bench-regression).
        regression = slower < alpha and ratio >= 1 + min_effect
        improvement = faster < alpha and ratio <= 1 - min_effect
        if regression:
            reason = f"p95 {ratio - 1:+.1%} (95 % CI {low - 1:+.1%}…{high - 1:+.1%}), U test p={slower:.2g}"
        elif improvement:
            reason = f"faster: p95 {ratio - 1:+.1%}"
        else:
            reason = "no significant change" if slower >= alpha else "below the minimum effect"
        results.append(
            RouteComparison(route, base_p95, cur_p95, ratio, (low, high), slower,
                            regression, improvement, reason)
        )  # fmt: skip
    return results


@dataclass(frozen=True)
class ChangePoint:
    index: int  # first value of the new regime
    before_mean: float
    after_mean: float
    p_value: float

    @property
    def shift(self) -> float:
        return self.after_mean / self.before_mean - 1 if self.before_mean else math.inf


def _energy_split(x: np.ndarray[Any, Any], min_size: int) -> tuple[int, float] | None:
    """The split τ maximising the e-divisive statistic (α = 1), Matteson & James's
    Q̂ = τm/n · (2/(τm) Σ|x_i − y_j| − Σ_{i<k}|x_i − x_k| / C(τ,2) − Σ_{j<k}|y_j − y_k| / C(m,2))
    for x = x[:τ], y = x[τ:], m = n − τ — each within-sample mean over distinct pairs,
    as in the paper, R's ecp and Hunter / Otava (dividing by τ² instead counts the
    zero self-distances and favours short edge segments). min_size ≥ 2."""
    n = len(x)
    if n < 2 * min_size:
        return None
    distance = np.abs(x[:, None] - x[None, :])
    best: tuple[int, float] | None = None
    for tau in range(min_size, n - min_size + 1):
        left, right = distance[:tau, :tau], distance[tau:, tau:]
        between = distance[:tau, tau:].mean()
        # the full square holds each pair twice: 2 Σ_{i<k} / (τ(τ−1)) = Σ_{i<k} / C(τ,2)
        within_left = left.sum() / (tau * (tau - 1))
        within_right = right.sum() / ((n - tau) * (n - tau - 1))
        q = (tau * (n - tau) / n) * (2 * between - within_left - within_right)
        if best is None or q > best[1]:
            best = (tau, float(q))
    return best


def change_points(
    values: Sequence[float],
    *,
    samples: Sequence[Sequence[float]] | None = None,
    max_pvalue: float = 0.001,
    min_shift: float = 0.05,
    min_size: int = 3,
) -> list[ChangePoint]:
    """Change points in a series (e.g. one route's p95 per run), oldest first.

    With `samples` (each run's raw latencies, aligned with `values`), a split is
    confirmed on the pooled latencies of both sides — a Mann-Whitney U test and the
    shift of the pooled p95 — which sees a 10 % shift within a few runs where a t-test
    on a handful of noisy per-run p95s cannot; the minimum shift keeps run-to-run noise
    (significant at these sample sizes, but small) from counting.
    """
    if min_size < 2:
        raise InvalidValue("min_size", min_size, "at least 2 (a within-segment mean needs a pair)")
    x = np.asarray(values, dtype=float)
    if samples is not None and len(samples) != len(x):
        raise InvalidValue(
            "len(samples)", len(samples), f"one run's latencies per value ({len(x)} values)"
        )
    pooled = [np.asarray(s, dtype=float) for s in samples] if samples is not None else None
    found: list[ChangePoint] = []

    def search(lo: int, hi: int) -> None:
        split = _energy_split(x[lo:hi], min_size)
        if split is None:
            return
        tau = lo + split[0]
        before, after = x[lo:tau], x[tau:hi]
        if pooled is not None:
            left, right = np.concatenate(pooled[lo:tau]), np.concatenate(pooled[tau:hi])
            p = float(stats.mannwhitneyu(left, right, alternative="two-sided").pvalue)
            shift = _p95(right) / _p95(left) - 1 if _p95(left) else math.inf
        else:
            with warnings.catch_warnings():  # near-constant segments: scipy warns, p holds
                warnings.simplefilter("ignore", RuntimeWarning)
                test = stats.ttest_ind(before, after, equal_var=False)
            p = float(test.pvalue) if math.isfinite(test.pvalue) else 1.0
            shift = after.mean() / before.mean() - 1 if before.mean() else math.inf
        if p < max_pvalue and abs(shift) >= min_shift:
            found.append(ChangePoint(tau, float(before.mean()), float(after.mean()), p))
            search(lo, tau)
            search(tau, hi)

    search(0, len(x))
    return sorted(found, key=lambda c: c.index)
