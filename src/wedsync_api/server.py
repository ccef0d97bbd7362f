"""The reference API in a child process, for the commands and benchmarks that drive
load at it: the demo, the capacity test, the benchmarks. It runs `wedsync-perf serve`
in its own session: a Ctrl-C meant for the driver must not kill it mid-drain."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import time
from datetime import date

import httpx

from wedsync_perf.errors import WedsyncPerfError

__all__ = ["port_free", "start_server", "stop_server", "wait_ready"]


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on `host:port`: checked first, so a busy port is named
    instead of surfacing as a server that exits at start."""
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) != 0


def start_server(
    dsn: str,
    host: str,
    port: int,
    workers: int,
    token: str,
    warm: date | None = None,
    inject: str = "",
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start serving `dsn` with `token` guarding the monitoring endpoints; `warm` is a
    wedding day to warm the cache for, `inject` a demo fault. Not ready yet: see
    `wait_ready`."""
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "WEDSYNC_PERF_METRICS_TOKEN": token,
        **(extra_env or {}),
    }
    if inject:
        env["WEDSYNC_API_INJECT"] = inject
    if warm is not None:  # the wedding day about to be driven: warm it, as production would
        env["WEDSYNC_API_WARM_DATES"] = warm.isoformat()
    # A run gets its own cache secrets (every worker shares them through the env):
    # entries are named by HMAC and sealed, as in production.
    env.setdefault("WEDSYNC_PERF_CACHE_SECRET", secrets.token_urlsafe(24))
    env.setdefault("WEDSYNC_PERF_CACHE_KEYS", base64.b64encode(secrets.token_bytes(32)).decode())
    cmd = [sys.executable, "-m", "wedsync_perf", "serve", "--host", host, "--port", str(port)]
    cmd += ["--workers", str(workers)]
    return subprocess.Popen(cmd, env=env, start_new_session=True)  # noqa: S603 - our own module


def wait_ready(base_url: str, server: subprocess.Popen[bytes], timeout_s: float = 180) -> None:
    """Block until `/health/ready` answers 200 (migrated, warmed); a server that exits
    or stays unready is an error, not a hang."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise WedsyncPerfError(f"the API server exited with code {server.returncode}")
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise WedsyncPerfError(f"the API was not ready at {base_url} within {timeout_s:g} s")


def stop_server(server: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    """Ask the server to drain and stop; kill it if it has not within `timeout_s`, so
    no run leaves a server behind on its port."""
    server.terminate()
    try:
        server.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
