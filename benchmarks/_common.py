"""What every benchmark shares: where the database is, versions, machine, output."""

from __future__ import annotations

import base64
import json
import os
import platform
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import platformdirs

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def server_url() -> str:
    """DATABASE_URL, else the embedded PostgreSQL the demo uses."""
    from wedsync_perf.testing import postgres_server_url

    return postgres_server_url(Path(platformdirs.user_cache_dir("wedsync-perf")) / "bench")


def versions(*packages: str) -> dict[str, str]:
    found = {"python": platform.python_version(), "wedsync_perf": _commit()}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, Any]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "cpu_model": model, "platform": sys.platform}


def write_result(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return path


@asynccontextmanager
async def seeded_wedding_saturday(
    prefix: str, scale: float, seed_value: int = 11, server: str | None = None
) -> AsyncIterator[tuple[str, Any]]:
    """A throw-away seeded database (on `server`, default `server_url()`) and the
    wedding-Saturday workload drawn from it."""
    import asyncpg

    from wedsync_api.db import migrate
    from wedsync_api.seed import SeedPlan, seed
    from wedsync_api.workload import WeddingSaturday
    from wedsync_perf.testing import temporary_database

    async with temporary_database(server or server_url(), prefix=prefix) as dsn:
        await migrate(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            await seed(conn, SeedPlan(scale=scale, seed=seed_value))
            # Autovacuum would otherwise wake on the fresh tables a minute into the run
            # and take the other core mid-measurement.
            await conn.execute("VACUUM (ANALYZE)")
            workload = await WeddingSaturday.from_database(conn, seed_value)
        finally:
            await conn.close()
        yield dsn, workload


@asynccontextmanager
async def api_server(dsn: str, env: dict[str, str], token: str) -> AsyncIterator[Any]:
    """One reference-API worker in its own process (rate limit lifted), and an httpx
    client with room for a thousand connections to it; the server stops afterwards."""
    import asyncio

    import httpx

    from wedsync_api.server import start_server, stop_server, wait_ready
    from wedsync_perf.testing import free_port

    port = free_port()
    env = {"WEDSYNC_API_RATE_LIMIT": "100000000/minute", **env}
    server = start_server(dsn, "127.0.0.1", port, 1, token, extra_env=env)
    try:
        await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}", server)
        limits = httpx.Limits(max_connections=1024, max_keepalive_connections=1024)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=10
        ) as client:
            yield client
    finally:
        stop_server(server, timeout_s=30)


@asynccontextmanager
async def factory_server(
    factory: str, dsn: str, env: dict[str, str]
) -> AsyncIterator[tuple[int, subprocess.Popen[bytes]]]:
    """One worker serving the app `factory` ("module:function") on `dsn`, in its own
    process (rate limit lifted, its own cache secrets, as `start_server` gives a run):
    its port and process, ready; stopped afterwards."""
    import asyncio

    from wedsync_api.server import stop_server, wait_ready
    from wedsync_perf.testing import free_port

    port = free_port()
    code = (
        "from wedsync_perf.serving import serve; "
        f"serve({factory!r}, factory=True, port={port}, log_level='error', access_log=False)"
    )
    child_env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "WEDSYNC_API_RATE_LIMIT": "100000000/minute",
        "WEDSYNC_PERF_CACHE_SECRET": secrets.token_urlsafe(24),
        "WEDSYNC_PERF_CACHE_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        **env,
    }
    server = subprocess.Popen(  # noqa: ASYNC220 - a server, started once
        [sys.executable, "-c", code], cwd=ROOT, env=child_env, start_new_session=True
    )
    try:
        await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}", server)
        yield port, server
    finally:
        stop_server(server, timeout_s=30)
