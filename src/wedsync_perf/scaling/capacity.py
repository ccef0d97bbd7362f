"""Capacity planning: how many replicas (and database connections) each month needs.

1. **Scalability of one replica** from a load test (throughput at each concurrency):
   the Universal Scalability Law X(N) = λN / (1 + σ(N−1) + κN(N−1)), fitted by least
   squares, with a bootstrap confidence interval. Its peak is a replica's service rate.
2. **Demand** per month: the traffic model's upper quantile of the busiest minute.
3. **Replicas**: the fewest for which M/M/c's p95 response time (`queueing`) meets the
   target at that demand, plus headroom (one replica, N+1), and the database
   connections that implies by Little's law (requests/s × database time per request).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from scipy.optimize import curve_fit

from wedsync_perf.errors import InvalidValue
from wedsync_perf.scaling.model import TrafficModel
from wedsync_perf.scaling.queueing import replicas_for

__all__ = ["MonthPlan", "UslFit", "fit_usl", "plan_months"]


def _usl(n: np.ndarray, lam: float, sigma: float, kappa: float) -> np.ndarray:
    result: np.ndarray = lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))
    return result


@dataclass(frozen=True)
class UslFit:
    lam: float  # throughput of one request at a time (req/s)
    sigma: float  # contention
    kappa: float  # coherency
    peak_concurrency: float
    peak_rps: float
    peak_rps_ci: tuple[float, float]  # 90 % bootstrap interval

    def throughput(self, n: float) -> float:
        return float(_usl(np.asarray([n], dtype=float), self.lam, self.sigma, self.kappa)[0])


def fit_usl(
    concurrency: Sequence[float],
    throughput: Sequence[float],
    *,
    resamples: int = 200,
    seed: int = 0,
) -> UslFit:
    """Fit the USL to a load test (at least 4 concurrency levels)."""
    n = np.asarray(concurrency, dtype=float)
    x = np.asarray(throughput, dtype=float)
    if len(n) != len(x):
        raise InvalidValue("len(throughput)", len(x), f"one per concurrency level ({len(n)})")
    if len(n) < 4:
        raise InvalidValue("len(concurrency)", len(n), "at least 4 load-test points")
    if np.any(n < 1):
        raise InvalidValue("min(concurrency)", float(n.min()), "concurrency levels of at least 1")
    if np.any(x <= 0):
        raise InvalidValue(
            "min(throughput)", float(x.min()), "a positive throughput at every level"
        )

    def fit(ns: np.ndarray, xs: np.ndarray) -> tuple[float, float, float]:
        guess = (float(xs[np.argmin(ns)] / ns.min()), 0.05, 0.001)
        params, _ = curve_fit(
            _usl, ns, xs, p0=guess, bounds=([0, 0, 0], [np.inf, 1, 1]), maxfev=20_000
        )
        return float(params[0]), float(params[1]), float(params[2])

    def peak(lam: float, sigma: float, kappa: float) -> tuple[float, float]:
        best = math.sqrt((1 - sigma) / kappa) if kappa > 0 else float(n.max())
        best = min(max(best, 1.0), float(n.max()) * 4)
        return best, float(_usl(np.asarray([best]), lam, sigma, kappa)[0])

    lam, sigma, kappa = fit(n, x)
    n_star, x_star = peak(lam, sigma, kappa)
    rng = np.random.default_rng(seed)
    peaks = []
    for _ in range(resamples):
        pick = rng.integers(0, len(n), len(n))
        if len(set(n[pick])) < 3:
            continue
        try:
            peaks.append(peak(*fit(n[pick], x[pick]))[1])
        except RuntimeError:  # a resample the optimiser cannot fit: skip it
            continue
    low, high = (float(v) for v in np.quantile(peaks, [0.05, 0.95])) if peaks else (x_star, x_star)
    return UslFit(lam, sigma, kappa, n_star, x_star, (low, high))


@dataclass(frozen=True)
class MonthPlan:
    month: str  # YYYY-MM
    peak_rps: float
    replicas: int
    db_connections: int
    utilisation_at_peak: float


def plan_months(
    model: TrafficModel,
    year: int,
    *,
    replica_rps: float,
    p95_target_s: float,
    db_seconds_per_request: float,
    headroom: int = 1,
    upper_factor: float = 1.2,
) -> list[MonthPlan]:
    """Per month of `year`: the busiest minute's expected rate × `upper_factor` (an
    upper quantile: minute noise and forecast error), replicas for the p95 target plus
    `headroom`, and connections = peak rps × database time per request (Little), +30 %."""
    plans = []
    for month in range(1, 13):
        first = date(year, month, 1)
        last = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        peak = 0.0
        day = first
        while day < last:
            for hour in range(24):
                at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
                peak = max(peak, model.planning_rps(at) + _wedding_peak_in_hour(model, at))
            day += timedelta(days=1)
        demand = peak * upper_factor
        replicas = replicas_for(demand, replica_rps, p95_target_s) + headroom
        connections = math.ceil(demand * db_seconds_per_request * 1.3)
        plans.append(MonthPlan(first.strftime("%Y-%m"), round(demand, 1), replicas,
                               max(connections, replicas), round(demand / (replicas * replica_rps), 3)))  # fmt: skip
    return plans


def _wedding_peak_in_hour(model: TrafficModel, at: datetime) -> float:
    return max(model.wedding_rps(at + timedelta(minutes=m)) for m in range(0, 60, 5))
