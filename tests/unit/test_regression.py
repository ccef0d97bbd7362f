"""Regression detection on synthetic skewed latencies with known shifts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wedsync_perf.errors import ConfigError, InvalidValue
from wedsync_perf.monitoring.regression import (
    BenchRun,
    _energy_split,
    change_points,
    compare,
)


def run(rng: np.random.Generator, scale: float = 1.0, n: int = 400) -> BenchRun:
    samples = rng.lognormal(mean=np.log(20), sigma=0.5, size=n) * scale
    return BenchRun({"GET /weddings/{id}/timeline": samples.tolist()})


def test_a_30_percent_slowdown_is_flagged_and_an_aa_pair_is_not() -> None:
    rng = np.random.default_rng(1)
    [slow] = compare(run(rng), run(rng, 1.3))
    assert slow.regression
    assert slow.p95_ratio > 1.15
    assert slow.ratio_ci[0] > 1
    [same] = compare(run(rng), run(rng))
    assert not same.regression
    [faster] = compare(run(rng), run(rng, 0.7))
    assert faster.improvement
    assert not faster.regression


def test_change_points_find_a_step_and_ignore_noise() -> None:
    rng = np.random.default_rng(2)
    history = list(rng.normal(100, 2, 30)) + list(rng.normal(110, 2, 5))
    [point] = change_points(history)
    assert point.index == 30
    assert point.shift == pytest.approx(0.10, abs=0.03)
    assert change_points(list(rng.normal(100, 2, 40))) == []
    assert change_points([100.0] * 20 + [300.0] + [100.0] * 20) == []  # one outlier


def test_the_split_statistic_is_matteson_and_james() -> None:
    # By hand from the paper at τ = 2: between 2·20/12, left within 0, right within
    # 36/C(6,2) = 2.4, so Q = (2·6/8)(10/3 − 2.4) = 1.4; the next best (τ = 3, 5) is
    # 0.875. Dividing the within sums by τ² and m² instead puts the split at τ = 5.
    x = np.array([2.0, 2, 3, 1, 1, 4, 5, 0])
    split = _energy_split(x, 2)
    assert split is not None
    assert split[0] == 2
    assert split[1] == pytest.approx(1.4)
    with pytest.raises(InvalidValue, match="min_size"):
        change_points([1.0, 2.0, 3.0, 4.0], min_size=1)


def test_bad_runs_are_refused_with_the_field(tmp_path: Path) -> None:
    wrong = tmp_path / "a.json"
    wrong.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ConfigError, match="format"):
        BenchRun.load(wrong)
    negative = tmp_path / "b.json"
    negative.write_text(
        json.dumps({"format": "wedsync-perf-bench/1", "routes": {"r": {"samples_ms": [-1]}}})
    )
    with pytest.raises(ConfigError, match=r"routes\.r\.samples_ms"):
        BenchRun.load(negative)


def test_regress_cli_exits_1_on_a_regression_only(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    base, same, slow = tmp_path / "base.json", tmp_path / "same.json", tmp_path / "slow.json"
    base.write_text(run(rng).to_json())
    same.write_text(run(rng).to_json())
    slow.write_text(run(rng, 1.3).to_json())

    def regress(current: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "wedsync_perf", "regress", "--baseline", str(base), "--current", str(current)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    assert regress(same).returncode == 0
    flagged = regress(slow)
    assert flagged.returncode == 1
    assert "REGRESSION" in flagged.stdout
    assert "/weddings/{id}/timeline" in flagged.stdout
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert regress(broken).returncode == 2


def test_pooled_samples_confirm_a_change_the_p95_values_alone_cannot() -> None:
    rng = np.random.default_rng(4)
    runs = [rng.lognormal(np.log(20), 0.35, 500) for _ in range(30)]
    runs += [rng.lognormal(np.log(20), 0.35, 500) * 1.1 for _ in range(3)]
    p95s = [float(np.quantile(r, 0.95)) for r in runs]
    assert [c.index for c in change_points(p95s, samples=runs)] == [30]
    with pytest.raises(ValueError, match="one run"):
        change_points(p95s, samples=runs[:-1])
