"""pg_stat_statements, read as deltas between snapshots and grouped by our fingerprint
(PostgreSQL's queryid splits what is one shape to us: IN-lists of other lengths, other
aliases)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from wedsync_perf.database.fingerprint import fingerprint, shape

__all__ = ["StatementStats", "available", "snapshot", "top"]


@dataclass
class StatementStats:
    fingerprint: str
    shape: str
    calls: int
    total_ms: float
    rows: int
    blocks_hit: int
    blocks_read: int

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0

    @property
    def cache_hit_ratio(self) -> float:
        total = self.blocks_hit + self.blocks_read
        return self.blocks_hit / total if total else 1.0


async def available(conn: asyncpg.Connection) -> bool:
    """True when pg_stat_statements is loaded (it is created here if only missing)."""
    preload = str(await conn.fetchval("SHOW shared_preload_libraries"))
    if "pg_stat_statements" not in preload:
        return False
    await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return True


async def snapshot(conn: asyncpg.Connection) -> dict[str, StatementStats]:
    """Current counters of this database's statements, keyed by fingerprint."""
    rows = await conn.fetch(
        "SELECT query, calls, total_exec_time, rows, shared_blks_hit, shared_blks_read"
        " FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
        " WHERE d.datname = current_database()"
    )
    grouped: dict[str, StatementStats] = {}
    for row in rows:
        fp = fingerprint(row["query"])
        stats = grouped.get(fp)
        if stats is None:
            stats = grouped[fp] = StatementStats(fp, shape(row["query"]), 0, 0.0, 0, 0, 0)
        stats.calls += row["calls"]
        stats.total_ms += float(row["total_exec_time"])
        stats.rows += row["rows"]
        stats.blocks_hit += row["shared_blks_hit"]
        stats.blocks_read += row["shared_blks_read"]
    return grouped


def top(
    after: dict[str, StatementStats],
    before: dict[str, StatementStats] | None = None,
    limit: int = 15,
) -> list[StatementStats]:
    """Statements by total time, as the delta `after − before` (or cumulative)."""
    result: list[StatementStats] = []
    for fp, now in after.items():
        then = (before or {}).get(fp)
        delta = StatementStats(
            fp,
            now.shape,
            now.calls - (then.calls if then else 0),
            now.total_ms - (then.total_ms if then else 0.0),
            now.rows - (then.rows if then else 0),
            now.blocks_hit - (then.blocks_hit if then else 0),
            now.blocks_read - (then.blocks_read if then else 0),
        )
        if delta.calls > 0:
            result.append(delta)
    result.sort(key=lambda s: s.total_ms, reverse=True)
    return result[:limit]


def as_dict(stats: StatementStats) -> dict[str, Any]:
    return {
        "fingerprint": stats.fingerprint,
        "shape": stats.shape,
        "calls": stats.calls,
        "total_ms": round(stats.total_ms, 3),
        "mean_ms": round(stats.mean_ms, 3),
        "rows": stats.rows,
        "cache_hit_ratio": round(stats.cache_hit_ratio, 4),
    }
