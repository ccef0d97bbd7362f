"""Database performance: migrations today; pool instrumentation, fingerprints and
index advice as they land."""

from wedsync_perf.database.migrations import Migration, apply_migrations, load_migrations
from wedsync_perf.database.pool import LanedPool, PoolTimeout

__all__ = ["LanedPool", "Migration", "PoolTimeout", "apply_migrations", "load_migrations"]
