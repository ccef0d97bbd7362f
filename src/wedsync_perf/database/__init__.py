"""Database performance: migrations today; pool instrumentation, fingerprints and
index advice as they land."""

from wedsync_perf.database.migrations import Migration, apply_migrations, load_migrations

__all__ = ["Migration", "apply_migrations", "load_migrations"]
