"""Plain versioned-SQL migrations for PostgreSQL.

Files are named `NNNN_description.sql` and applied in order, all pending ones in one
transaction (a failure leaves the schema as it was), under an advisory lock so two
processes starting at once cannot race.
Applied files are recorded with a checksum: editing one that already ran is an error,
not a silent divergence between databases.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from wedsync_perf.errors import MigrationError

__all__ = ["Migration", "apply_migrations", "load_migrations"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Arbitrary constant shared by every process that migrates this schema.
_LOCK_KEY = 0x5753_4D49_4752


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(package: str, folder: str = "migrations") -> list[Migration]:
    """Read `NNNN_name.sql` files shipped as package data, sorted by version."""
    found: list[Migration] = []
    for entry in resources.files(package).joinpath(folder).iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            if entry.name.endswith(".sql"):
                raise MigrationError(f"{entry.name}: expected a name like 0001_description.sql")
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {package}/{folder}: {versions}")
    return found


async def apply_migrations(conn: asyncpg.Connection, migrations: list[Migration]) -> list[int]:
    """Apply the migrations not yet recorded; return the versions applied now."""
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        done = {r["version"]: r for r in rows}
        for migration in migrations:
            recorded = done.get(migration.version)
            if recorded is not None:
                if recorded["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} changed after it "
                        "was applied; add a new migration instead of editing it"
                    )
                continue
            try:
                await conn.execute(migration.sql)
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                ) from exc
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration.version)
    return applied_now
