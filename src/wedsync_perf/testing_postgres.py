"""A private PostgreSQL server that a test may stop, restart and kill.

Made with `initdb` in a temporary folder and listening on its own free port on
127.0.0.1, so fault tests never touch a shared server. The server binaries come from
`pg_config --bindir` or Debian's /usr/lib/postgresql/<major>/bin; PostgreSQL refuses to
run as root, so as root the server runs as the `postgres` system user.

The cluster runs with `fsync=off`: a stop (even `immediate`, which kills the server
without a checkpoint) loses nothing the kernel already holds, so what a test of
acknowledged writes measures is the application's behaviour, not the disk's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from wedsync_perf.errors import EmbeddedServerError

__all__ = ["PgCtl", "PostgresProcess", "StopMode", "postgres_bindir", "private_postgres"]

StopMode = Literal["smart", "fast", "immediate"]


def postgres_bindir() -> Path:
    """The folder with initdb, pg_ctl and pg_basebackup; `EmbeddedServerError` if none."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run(  # noqa: S603 - a fixed tool found on PATH
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            candidates.append(Path(done.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if all((folder / tool).exists() for tool in ("initdb", "pg_ctl", "pg_basebackup")):
            return folder
    raise EmbeddedServerError(
        "no PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) found: install the "
        "Debian package postgresql (or put pg_config on PATH)"
    )


class PgCtl:
    """The server tools in `bindir`, run in `base` (as `postgres` when we are root)."""

    def __init__(self, bindir: Path, base: Path) -> None:
        self.bindir = bindir
        self.base = base
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(base, user="postgres", group="postgres")

    def run(self, tool: str, *args: str) -> None:
        done = self._call(tool, *args)
        if done.returncode != 0:
            raise EmbeddedServerError(f"{tool} failed ({done.returncode}): {done.stderr[-800:]}")

    def _call(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own arguments, no shell
            [*self.as_user, str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.base,
        )

    def running(self, data: Path) -> bool:
        return self._call("pg_ctl", "-D", str(data), "status").returncode == 0

    def init(self, data: Path) -> None:
        self.run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")

    def start(self, data: Path, port: int) -> None:
        options = f"-p {port} -h 127.0.0.1 -k {data} -c fsync=off -c full_page_writes=off"
        self.run("pg_ctl", "-D", str(data), "-l", str(data / "log"), "-o", options, "-w", "start")

    def stop(self, data: Path, mode: StopMode = "immediate") -> None:
        if (data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(data), "-m", mode, "-w", "stop")


class PostgresProcess:
    """One private cluster on `port`: `stop()` and `start()` keep its data and address,
    so clients see a real restart (fast: sessions terminated, a checkpoint; immediate:
    the server killed, crash recovery on the next start)."""

    def __init__(self, ctl: PgCtl, port: int) -> None:
        self.ctl = ctl
        self.port = port
        self.data = ctl.base / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def start(self) -> None:
        self.ctl.start(self.data, self.port)

    def stop(self, mode: StopMode = "fast") -> None:
        self.ctl.stop(self.data, mode)

    def restart(self, mode: StopMode = "fast") -> None:
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        return self.ctl.running(self.data)

    def ensure_started(self) -> None:
        """Start the server unless it runs: a test that failed mid-outage left it down."""
        if not self.running():
            self.start()


@contextmanager
def private_postgres() -> Iterator[PostgresProcess]:
    """Start a fresh cluster on a free port; stop it and delete its data afterwards."""
    from wedsync_perf.testing import free_port

    ctl = PgCtl(postgres_bindir(), Path(tempfile.mkdtemp(prefix="wedsync-pg-")))
    server = PostgresProcess(ctl, free_port())
    try:
        ctl.init(server.data)
        server.start()
        yield server
    finally:
        with contextlib.suppress(EmbeddedServerError):  # already down: remove anyway
            server.stop("immediate")
        shutil.rmtree(ctl.base, ignore_errors=True)
