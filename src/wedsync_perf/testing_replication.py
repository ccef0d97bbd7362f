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
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wedsync_perf.errors import EmbeddedServerError
from wedsync_perf.testing_postgres import PgCtl, postgres_bindir

__all__ = ["StreamingPair", "postgres_bindir", "streaming_pair"]


@dataclass(frozen=True)
class StreamingPair:
    primary_url: str
    replica_url: str
    primary_port: int
    replica_port: int


@contextmanager
def streaming_pair() -> Iterator[StreamingPair]:
    """Start a primary and a streaming replica of it; stop both and delete their data."""
    from wedsync_perf.testing import free_port

    runner = PgCtl(postgres_bindir(), Path(tempfile.mkdtemp(prefix="wedsync-replica-")))
    base = runner.base
    primary, replica = base / "primary", base / "replica"
    primary_port, replica_port = free_port(), free_port()
    try:
        runner.init(primary)
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
