"""The `wedsync-perf` commands, run as a user runs them: in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from wedsync_perf.testing import temporary_database

pytestmark = pytest.mark.integration


def _run(args: list[str], dsn: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": dsn, "COLUMNS": "160"}
    env.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "wedsync_perf", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


async def test_demo_drives_every_priority_class(server_url: str) -> None:
    async with temporary_database(server_url) as dsn:
        port = _free_port()
        args = ["demo", "--duration", "5", "--rps", "60", "--scale", "0.01", "--port", str(port)]
        result = _run(args, dsn)
        assert result.returncode == 0, result.stderr[-2000:]
        out = result.stdout
        assert "Summary by priority class" in out
        summary = out[out.index("Summary by priority class") :]
        for priority in ("critical", "standard", "bulk"):
            row = next(line for line in summary.splitlines() if f" {priority} " in line)
            total = int(row.split("│")[3].strip().replace(",", ""))
            assert total > 0, row
