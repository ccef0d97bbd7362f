"""The generated Prometheus rules, judged by promtool itself: they load, and their own
test proves a fast burn pages within 2 minutes while a one-minute blip never alerts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wedsync_perf", *args],
        capture_output=True, text=True, cwd=cwd, timeout=120, check=False,
    )  # fmt: skip


def test_generated_rules_pass_promtool_check_and_test(tmp_path: Path, promtool: str) -> None:
    made = cli("slo", "rules", "--out", str(tmp_path), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    rules, test = tmp_path / "wedsync-slo.rules.yml", tmp_path / "wedsync-slo.rules.test.yml"
    checked = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", test.name], capture_output=True, text=True, cwd=tmp_path
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_rules_without_the_hold_fail_their_own_test(tmp_path: Path, promtool: str) -> None:
    """The test file can fail: drop the page's 'still burning' check and the blip pages."""
    import yaml

    from wedsync_perf.monitoring.rules import prometheus_rules, rules_test
    from wedsync_perf.monitoring.slo import DEFAULT_SLOS, WORKBOOK_WINDOWS

    naive = DEFAULT_SLOS.model_copy(
        update={
            "windows": tuple(w.model_copy(update={"confirm_s": None}) for w in WORKBOOK_WINDOWS)
        }
    )
    (tmp_path / "r.yml").write_text(yaml.safe_dump(prometheus_rules(naive)))
    (tmp_path / "t.yml").write_text(yaml.safe_dump(rules_test(naive, "r.yml")))
    tested = subprocess.run(
        [promtool, "test", "rules", "t.yml"], capture_output=True, text=True, cwd=tmp_path
    )
    assert tested.returncode != 0


def test_a_bad_slo_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "slo.toml"
    bad.write_text('[[objectives]]\nname = "Bad Name"\nkind = "availability"\nobjective = 0.99\n')
    result = cli("slo", "rules", "--config", str(bad), "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "objectives.0.name" in result.stderr


def test_grafana_dashboard_is_written(tmp_path: Path) -> None:
    import json

    result = cli("grafana", "--out", str(tmp_path / "g.json"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    dashboard = json.loads((tmp_path / "g.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert any("wedsync:slo_bad:ratio_rate1h" in e for e in exprs)
    assert any("histogram_quantile(0.95" in e for e in exprs)
