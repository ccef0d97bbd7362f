"""`wedsync-perf capacity measure` against a real server on the seeded database, then
`capacity plan` from its output; `simulate` and `scale manifests` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_cli import _run
from wedsync_perf.testing import free_port

pytestmark = pytest.mark.integration


async def test_measure_then_plan(seeded_dsn: str, tmp_path: Path) -> None:
    loadtest = tmp_path / "lt.json"
    measured = _run(
        ["capacity", "measure", "--out", str(loadtest), "--levels", "1,2,4,8", "--seconds", "1",
         "--port", str(free_port())],
        seeded_dsn, timeout=300,
    )  # fmt: skip
    assert measured.returncode == 0, measured.stderr[-2000:]
    data = json.loads(loadtest.read_text())
    assert [p["concurrency"] for p in data["points"]] == [1, 2, 4, 8]
    assert all(p["throughput_rps"] > 0 and p["errors"] == 0 for p in data["points"])
    png = tmp_path / "plan.png"
    plan = _run(["capacity", "plan", "--load-test", str(loadtest), "--png", str(png)], seeded_dsn)
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "2027-06" in plan.stdout
    assert "db connections" in plan.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = _run(["capacity", "measure", "--levels", "1,2"], seeded_dsn)
    assert bad.returncode == 2
    assert "--levels" in bad.stderr


async def test_simulate_and_manifests(tmp_path: Path, seeded_dsn: str) -> None:
    png = tmp_path / "sim.png"
    sim = _run(["simulate", "--days", "16", "--png", str(png)], seeded_dsn, timeout=300)
    assert sim.returncode == 0, sim.stderr[-2000:]
    for policy in ("hpa", "hpa_cpu", "hpa_cron", "aws_predicti", "static", "wedding"):
        assert policy in sim.stdout
    assert png.exists()
    made = _run(["scale", "manifests", "--out", str(tmp_path), "--min-replicas", "3"], seeded_dsn)
    assert made.returncode == 0, made.stderr
    assert "autoscaling/v2" in (tmp_path / "hpa.yaml").read_text()
    assert "cron" in (tmp_path / "keda-scaledobject.yaml").read_text()
    wrong = _run(["scale", "manifests", "--min-replicas", "9", "--max-replicas", "3"], seeded_dsn)
    assert wrong.returncode == 2
    decided = _run(["scale", "decide", "--rps", "5000", "--current", "2", "--at", "2027-06-15T11:00"],
                   seeded_dsn)  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    assert "replicas — " in decided.stdout
    assert (
        _run(
            ["scale", "decide", "--rps", "1", "--current", "2", "--at", "noon"], seeded_dsn
        ).returncode
        == 2
    )
