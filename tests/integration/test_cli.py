"""The `wedsync-perf` commands, run as a user runs them: in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import key_for, served_api
from wedsync_perf.testing import free_port, temporary_database

pytestmark = pytest.mark.integration


def _run(
    args: list[str], dsn: str, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": dsn, "COLUMNS": "160", **(env or {})}
    env.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "wedsync_perf", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def test_seed_twice_is_refused_with_a_clear_message(server_url: str) -> None:
    async with temporary_database(server_url) as dsn:
        first = _run(["seed", "--scale", "0.01"], dsn)
        assert first.returncode == 0, first.stderr
        assert "seeded" in first.stdout
        second = _run(["seed", "--scale", "0.01"], dsn)
        assert second.returncode == 2
        assert "already seeded" in second.stderr
        assert "--force" in second.stderr


async def test_bad_option_names_the_field(server_url: str) -> None:
    async with temporary_database(server_url) as dsn:
        result = _run(["seed", "--scale", "-3"], dsn)
        assert result.returncode == 2
        assert "--scale" in result.stderr


async def test_demo_drives_every_priority_class(server_url: str, tmp_path: Path) -> None:
    async with temporary_database(server_url) as dsn:
        port = free_port()
        args = ["demo", "--duration", "5", "--rps", "60", "--scale", "0.01", "--port", str(port)]
        run_file = tmp_path / "run.json"
        result = _run([*args, "--save-run", str(run_file)], dsn)
        assert result.returncode == 0, result.stderr[-2000:]
        out = result.stdout
        assert "/perf (any user name; password " in out  # the dashboard's address
        # The saved run is what `regress` reads; a run never regresses against itself.
        saved = json.loads(run_file.read_text())
        assert saved["format"] == "wedsync-perf-bench/1"
        assert len(saved["routes"]["GET /weddings/{id}/timeline"]["samples_ms"]) > 10
        same = _run(["regress", "--baseline", str(run_file), "--current", str(run_file)], dsn)
        assert same.returncode == 0, same.stdout + same.stderr
        assert "Summary by priority class" in out
        server_side = out[out.index("Whole run (server-side)") : out.index("Summary by priority")]
        # Common routes only: a rare one (imports, ~5 expected in 5 s) could be absent.
        for template in ("/weddings/{wedding_id}/timeline", "/suppliers/search"):
            assert template in server_side
        summary = out[out.index("Summary by priority class") :]
        for priority in ("critical", "standard", "bulk"):
            row = next(line for line in summary.splitlines() if f" {priority} " in line)
            total = int(row.split("│")[3].strip().replace(",", ""))
            assert total > 0, row


async def test_demo_stops_cleanly_on_interrupt_with_a_summary(server_url: str) -> None:
    async with temporary_database(server_url) as dsn:
        env = {**os.environ, "DATABASE_URL": dsn, "COLUMNS": "160"}
        env.pop("REDIS_URL", None)
        port = free_port()
        demo = subprocess.Popen(  # noqa: ASYNC220 - the test waits on it by design
            [sys.executable, "-m", "wedsync_perf", "demo", "--rps", "40", "--scale", "0.01",
             "--port", str(port)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert demo.stdout is not None
        # Interrupt once load is flowing: the "serving" line is printed just before it.
        for line in demo.stdout:
            if line.startswith("serving"):
                break
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=60)
        assert demo.returncode == 0, err[-2000:]
        assert "Summary by priority class" in out
        # The API server was stopped with the demo, not left behind.
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0


async def test_top_shows_the_servers_routes_and_refuses_a_bad_token(seeded_dsn: str) -> None:
    token = "top-secret-token"
    env = {"DATABASE_URL": seeded_dsn, "WEDSYNC_PERF_METRICS_TOKEN": token, "REDIS_URL": ""}
    async with served_api(env) as base:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            for _ in range(3):
                await client.get("/weddings/5/timeline", headers=key_for(1))
        top = _run(["top", "--once", "--url", base, "--token", token], seeded_dsn)
        assert top.returncode == 0, top.stderr
        assert "/weddings/{wedding_id}/timeline" in top.stdout
        refused = _run(["top", "--once", "--url", base, "--token", "nope"], seeded_dsn)
        assert refused.returncode == 2
        assert "refused the token" in refused.stderr

        report_env = {"WEDSYNC_PERF_METRICS_TOKEN": token}
        db = _run(
            ["db", "report", "--json", "--no-advise", "--api", base], seeded_dsn, env=report_env
        )
        assert db.returncode == 0, db.stderr
        api_queries = json.loads(db.stdout)["api_queries"]
        assert "/weddings/{wedding_id}/timeline" in api_queries["routes"]
        assert api_queries["n_plus_one"] == []  # the reference API batches its reads
        wrong = _run(["db", "report", "--no-advise", "--api", base], seeded_dsn,
                     env={"WEDSYNC_PERF_METRICS_TOKEN": "nope"})  # fmt: skip
        assert wrong.returncode == 2
        assert "--api" in wrong.stderr
        assert "401" in wrong.stderr


async def test_db_report_says_what_it_can_on_any_server(seeded_dsn: str) -> None:
    import json

    result = _run(["db", "report", "--json", "--limit", "5"], seeded_dsn)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    if report["pg_stat_statements"]:  # embedded server: preloaded
        assert len(report["statements"]) <= 5
    assert isinstance(report["existing_indexes"], list)
    assert report["index_advice"]["queries"] >= 1
    plain = _run(["db", "report"], seeded_dsn)
    assert plain.returncode == 0
    assert "Top statements" in plain.stdout or "shared_preload_libraries" in plain.stdout


async def test_db_advise_suggests_without_creating(seeded_dsn: str) -> None:
    import json

    import asyncpg

    conn = await asyncpg.connect(seeded_dsn)
    try:
        count = "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
        before = await conn.fetchval(count)
        result = _run(["db", "advise", "--json", "--measure"], seeded_dsn, timeout=300)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["queries"] >= 1
        if report["suggestions"]:
            assert set(report["measured_workload_ms"]) == {"now", "with_suggestions"}
        assert 0 < report["relative_cost"] <= 1
        for suggestion in report["suggestions"]:
            assert suggestion["statement"].startswith("CREATE INDEX CONCURRENTLY ON ")
        assert await conn.fetchval(count) == before
    finally:
        await conn.close()
