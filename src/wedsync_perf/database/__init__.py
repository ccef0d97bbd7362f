"""Database performance and resilience: laned pools, fault classification, migrations;
pool instrumentation, fingerprints and index advice beside them."""

from wedsync_perf.database.errors import (
    DatabaseFault,
    DatabaseUnavailable,
    breaks_connection,
    fault_of,
)
from wedsync_perf.database.migrations import Migration, apply_migrations, load_migrations
from wedsync_perf.database.pool import LanedPool, PoolTimeout
from wedsync_perf.database.transactions import run_in_transaction

__all__ = [
    "DatabaseFault",
    "DatabaseUnavailable",
    "LanedPool",
    "Migration",
    "PoolTimeout",
    "apply_migrations",
    "breaks_connection",
    "fault_of",
    "load_migrations",
    "run_in_transaction",
]
