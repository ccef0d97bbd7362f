from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wedsync_api.settings import ApiSettings, load_api_settings
from wedsync_perf.errors import ConfigError
from wedsync_perf.settings import PerfSettings, env_var_for, load_settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEDSYNC_PERF_SLO_MS", "fast"),
        ("WEDSYNC_PERF_SLO_MS", "-1"),
        ("WEDSYNC_PERF_SEASON_START_MONTH", "13"),
    ],
)
def test_invalid_library_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(PerfSettings)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


def test_cross_field_rule_names_the_variable_it_rejects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_PERF_SLO_MS", "50")
    with pytest.raises(ConfigError) as caught:
        load_settings(PerfSettings)
    assert caught.value.variable == "WEDSYNC_PERF_CRITICAL_SLO_MS"
    assert "WEDSYNC_PERF_SLO_MS" in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("REDIS_URL", "memcached://localhost"),
        ("WEDSYNC_API_POOL_MAX_SIZE", "0"),
        ("WEDSYNC_API_RATE_LIMIT", "lots"),
        ("WEDSYNC_API_WARM_DATES", "2027-06-12,12/06/2027"),
    ],
)
def test_invalid_api_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_api_settings()
    assert caught.value.variable == variable


def test_url_values_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://admin:hunter2@db/x")
    with pytest.raises(ConfigError) as caught:
        load_api_settings()
    assert "hunter2" not in str(caught.value)


def test_standard_url_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("REDIS_URL", "redis://h:6379/0")
    settings = load_api_settings()
    assert settings.database_url == "postgresql://u@h/db"
    assert settings.redis_url == "redis://h:6379/0"
    assert env_var_for(ApiSettings, "pool_max_size") == "WEDSYNC_API_POOL_MAX_SIZE"


def test_cli_stops_with_the_variable_name() -> None:
    env = {**os.environ, "WEDSYNC_PERF_SLO_MS": "soon"}
    result = subprocess.run(
        [sys.executable, "-m", "wedsync_perf", "config"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "WEDSYNC_PERF_SLO_MS" in result.stderr
    assert "Traceback" not in result.stderr
