"""The generated Prometheus rules, judged by promtool itself: they load, and their own
test proves a fast burn pages within 2 minutes while a one-minute blip never alerts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wedsync_perf.errors import InvalidValue
from wedsync_perf.monitoring.rules import prometheus_rules, rules_test
from wedsync_perf.monitoring.slo import (
    DEFAULT_SLOS,
    WORKBOOK_WINDOWS,
    BurnWindow,
    Objective,
    SloConfig,
)

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


# Half the requests failing against a 25 % budget burns at exactly 2x: binary fractions,
# so PromQL's ratio of equal rates and the evaluator's ratio of counts are both exact
# (tests/unit/test_slo_alerts.py runs the evaluator on the same traffic).
def exact_config() -> SloConfig:
    return SloConfig(
        objectives=(Objective(name="avail", kind="availability", objective=0.75),),
        windows=(BurnWindow(severity="page", long_s=600, short_s=120, burn=2, confirm_s=30),),
    )


def test_a_burn_exactly_at_the_bar_pages_and_just_under_it_does_not(
    tmp_path: Path, promtool: str
) -> None:
    rules = yaml.safe_dump(prometheus_rules(exact_config()))

    def series(ok: int, bad: int) -> list[dict[str, str]]:
        name = 'wedsync_http_requests_total{route="/t", status_class="%s"}'
        return [
            {"series": name % "2xx", "values": f"0+{ok}x80"},
            {"series": name % "5xx", "values": f"0+{bad}x80"},
        ]

    page = {
        "exp_labels": {"severity": "page", "objective": "avail", "window": "10m/2m", "regime": "any"},
        "exp_annotations": {"summary": "avail: error budget burning over 2x (10m/2m, objective 75.00%)"},
    }  # fmt: skip
    test = {
        "rule_files": ["r.yml"],
        "evaluation_interval": "15s",
        "tests": [
            {"interval": "15s", "input_series": series(ok, bad), "alert_rule_test": [
                {"eval_time": "15m", "alertname": "WedsyncSLOBurnRate", "exp_alerts": expected}]}
            for (ok, bad), expected in (((30, 30), [page]), ((31, 29), []))
        ],
    }  # fmt: skip
    (tmp_path / "t.yml").write_text(yaml.safe_dump(test))

    def promtool_test(rule_text: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "r.yml").write_text(rule_text)
        return subprocess.run(
            [promtool, "test", "rules", "t.yml"], capture_output=True, text=True, cwd=tmp_path
        )

    tested = promtool_test(rules)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert " >= " in rules
    assert promtool_test(rules.replace(" >= ", " > ")).returncode != 0  # `>` misses it


def test_rules_confirming_over_another_window_fail_their_own_test(
    tmp_path: Path, promtool: str
) -> None:
    """The confirmation boundary in the generated test is the config's: rules that
    confirm over 30 s against a test for a 1 m confirmation stop paging too early."""
    longer = DEFAULT_SLOS.model_copy(
        update={
            "windows": tuple(
                w.model_copy(update={"confirm_s": 60}) if w.confirm_s else w
                for w in WORKBOOK_WINDOWS
            )
        }
    )
    (tmp_path / "r.yml").write_text(yaml.safe_dump(prometheus_rules(DEFAULT_SLOS)))
    (tmp_path / "t.yml").write_text(yaml.safe_dump(rules_test(longer, "r.yml")))
    tested = subprocess.run(
        [promtool, "test", "rules", "t.yml"], capture_output=True, text=True, cwd=tmp_path
    )
    assert tested.returncode != 0
    assert "time: 1d2m45s," in tested.stdout + tested.stderr  # the last errors + 1 m − 15 s


def test_a_confirmation_shorter_than_two_scrapes_is_refused() -> None:
    short = DEFAULT_SLOS.model_copy(
        update={"windows": tuple(w.model_copy(update={"confirm_s": 20}) for w in WORKBOOK_WINDOWS)}
    )
    with pytest.raises(InvalidValue, match=r"windows\.0\.confirm_s"):
        prometheus_rules(short)
