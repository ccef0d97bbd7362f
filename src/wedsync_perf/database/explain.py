"""EXPLAIN plans turned into findings with a suggested fix.

Only read statements are explained (a write is refused before it reaches the server),
and always inside a transaction that is rolled back — ANALYZE executes the statement.
Without ANALYZE the rules work on estimates; with it, on what happened.

| finding                | rule                                                        |
|------------------------|-------------------------------------------------------------|
| seq_scan_indexable     | Seq Scan with a filter on a table of ≥ 10,000 rows keeping ≤ 10 % of them |
| spill_to_disk          | Sort on disk, or Hash in more than one batch                |
| row_misestimate        | actual rows ≥ 100x off the estimate (either way)            |
| nested_loop_heavy      | inner side of a Nested Loop run ≥ 1,000 times               |
| low_cache_hit          | < 90 % of ≥ 1,000 shared blocks found in the buffer cache   |
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from wedsync_perf.errors import InvalidValue

__all__ = ["PlanFinding", "explain", "findings"]

_WRITE = re.compile(
    r"^\s*(insert|update|delete|merge|truncate|copy|create|alter|drop|grant|revoke|vacuum|cluster|reindex|refresh|lock|call|do)\b",
    re.IGNORECASE,
)
_COLUMN = re.compile(r"\(?([a-z_][a-z0-9_]*)\)?\s*(?:=|<|>|<=|>=|~~|~~\*|IS)\s", re.IGNORECASE)
BIG_TABLE_ROWS = 10_000


@dataclass(frozen=True)
class PlanFinding:
    kind: str
    relation: str | None
    detail: str
    suggestion: str


async def explain(
    conn: asyncpg.Connection, sql: str, *args: Any, analyze: bool = False, generic: bool = False
) -> dict[str, Any]:
    """The JSON plan of a read statement. `generic` (PostgreSQL 16+) plans it without
    parameter values, as pg_stat_statements reports it."""
    if _WRITE.match(sql) or ";" in sql.strip().rstrip(";"):
        raise InvalidValue(
            "sql", sql[:80], "a single read statement (no write, no second statement)"
        )
    options = ["FORMAT JSON"]
    if generic and not args:
        # The placeholders still need bind values over the extended protocol; a generic
        # plan ignores them, so NULLs will do.
        args = tuple([None] * max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0))
    if analyze:
        options += ["ANALYZE", "BUFFERS"]
    if generic:
        options.append("GENERIC_PLAN")
    transaction = conn.transaction(readonly=True)
    await transaction.start()
    try:
        raw = await conn.fetchval(f"EXPLAIN ({', '.join(options)}) {sql}", *args)
    finally:
        await transaction.rollback()
    plan = json.loads(raw) if isinstance(raw, str) else raw
    result: dict[str, Any] = plan[0]
    return result


def _nodes(
    node: dict[str, Any], parent: dict[str, Any] | None = None
) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    yield node, parent
    for child in node.get("Plans", []):
        yield from _nodes(child, node)


def findings(plan: dict[str, Any], table_rows: dict[str, float]) -> list[PlanFinding]:
    """Findings for one plan; `table_rows` gives each relation's row count (reltuples)."""
    found: list[PlanFinding] = []
    analyzed = "Actual Rows" in plan.get("Plan", {})
    for node, parent in _nodes(plan["Plan"]):
        kind = node.get("Node Type")
        relation = node.get("Relation Name")
        if kind == "Seq Scan" and relation and node.get("Filter"):
            total = table_rows.get(relation, 0.0)
            kept = node.get("Actual Rows", node.get("Plan Rows", 0)) * node.get("Actual Loops", 1)
            if total >= BIG_TABLE_ROWS and kept <= 0.1 * total:
                columns = sorted(set(_COLUMN.findall(node["Filter"])))
                found.append(PlanFinding(
                    "seq_scan_indexable", relation,
                    f"scans {total:,.0f} rows to keep {kept:,.0f} (filter {node['Filter']})",
                    f"CREATE INDEX CONCURRENTLY ON {relation} ({', '.join(columns) or '…'})",
                ))  # fmt: skip
        if kind == "Sort" and node.get("Sort Space Type") == "Disk":
            found.append(PlanFinding(
                "spill_to_disk", relation, f"sort used {node.get('Sort Space Used', '?')} kB on disk",
                "raise work_mem for this query, or add an index that returns rows in order",
            ))  # fmt: skip
        if kind == "Hash" and node.get("Hash Batches", 1) > 1:
            found.append(PlanFinding(
                "spill_to_disk", relation, f"hash split into {node['Hash Batches']} batches",
                "raise work_mem for this query, or join on fewer rows",
            ))  # fmt: skip
        if analyzed and "Actual Rows" in node:
            estimate = max(float(node.get("Plan Rows", 0)), 1.0)
            actual = max(float(node["Actual Rows"]), 1.0)
            if max(actual / estimate, estimate / actual) >= 100:
                found.append(PlanFinding(
                    "row_misestimate", relation,
                    f"{kind} estimated {estimate:,.0f} rows, got {actual:,.0f}",
                    f"ANALYZE {relation}" if relation else "ANALYZE; consider extended statistics",
                ))  # fmt: skip
        if parent is not None and parent.get("Node Type") == "Nested Loop":
            inner = parent.get("Plans", [])
            if len(inner) > 1 and node is inner[1] and node.get("Actual Loops", 0) >= 1000:
                found.append(PlanFinding(
                    "nested_loop_heavy", relation,
                    f"inner {kind} ran {node['Actual Loops']:,} times",
                    "index the inner join key, or let the planner hash-join (check estimates)",
                ))  # fmt: skip
    top = plan["Plan"]
    hit, read = top.get("Shared Hit Blocks", 0), top.get("Shared Read Blocks", 0)
    if hit + read >= 1000 and hit / (hit + read) < 0.9:
        found.append(PlanFinding(
            "low_cache_hit", None, f"{hit / (hit + read):.0%} of {hit + read:,} blocks from cache",
            "the working set exceeds shared_buffers: narrow the query or add memory",
        ))  # fmt: skip
    return found


async def table_rows(conn: asyncpg.Connection) -> dict[str, float]:
    rows = await conn.fetch(
        "SELECT relname, greatest(reltuples, 0) AS n FROM pg_class"
        " WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
    )
    return {r["relname"]: float(r["n"]) for r in rows}
