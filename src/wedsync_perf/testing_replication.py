"""A real PostgreSQL primary with a streaming replica, for tests of replica routing.

Both clusters are private: made with `initdb` in a temporary folder, the replica cloned
from the primary with `pg_basebackup -R` (standby.signal and primary_conninfo written by
it), each listening on its own free port on 127.0.0.1. The PostgreSQL server binaries
come from `pg_config --bindir` or Debian's /usr/lib/postgresql/<major>/bin; PostgreSQL
refuses to run as root, so as root the servers run as the `postgres` system user.

`pause_replay()` / `resume_replay()` hold the replica back on demand (the real
`pg_wal_replay_pause()`), so a test can make it lag without sleeping and hoping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wedsync_perf.errors import EmbeddedServerError

__all__ = ["StreamingPair", "postgres_bindir", "streaming_pair"]


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


@dataclass(frozen=True)
class StreamingPair:
    primary_url: str
    replica_url: str
    primary_port: int
    replica_port: int


class _Runner:
    def __init__(self, bindir: Path, base: Path) -> None:
        self.bindir = bindir
        self.base = base
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def run(self, tool: str, *args: str) -> None:
        done = subprocess.run(  # noqa: S603 - our own arguments, no shell
            [*self.as_user, str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.base,
        )
        if done.returncode != 0:
            raise EmbeddedServerError(f"{tool} failed ({done.returncode}): {done.stderr[-800:]}")

    def start(self, data: Path, port: int) -> None:
        options = f"-p {port} -h 127.0.0.1 -k {data} -c fsync=off -c full_page_writes=off"
        self.run("pg_ctl", "-D", str(data), "-l", str(data / "log"), "-o", options, "-w", "start")

    def stop(self, data: Path) -> None:
        if (data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")


@contextmanager
def streaming_pair() -> Iterator[StreamingPair]:
    """Start a primary and a streaming replica of it; stop both and delete their data."""
    from wedsync_perf.testing import free_port

    runner = _Runner(postgres_bindir(), Path(tempfile.mkdtemp(prefix="wedsync-replica-")))
    base = runner.base
    primary, replica = base / "primary", base / "replica"
    if runner.as_user:
        shutil.chown(base, user="postgres", group="postgres")
    primary_port, replica_port = free_port(), free_port()
    try:
        runner.run("initdb", "-D", str(primary), "-U", "postgres", "--auth=trust", "--no-sync")
        runner.start(primary, primary_port)
        runner.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres",
            "-D", str(replica), "-R", "--checkpoint=fast", "--wal-method=stream", "--no-sync",
        )  # fmt: skip
        runner.start(replica, replica_port)
        yield StreamingPair(
            primary_url=f"postgresql://postgres@127.0.0.1:{primary_port}/postgres",
            replica_url=f"postgresql://postgres@127.0.0.1:{replica_port}/postgres",
            primary_port=primary_port,
            replica_port=replica_port,
        )
    finally:
        for data in (replica, primary):
            with contextlib.suppress(EmbeddedServerError):  # already down: remove anyway
                runner.stop(data)
        shutil.rmtree(base, ignore_errors=True)
