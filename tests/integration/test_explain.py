"""EXPLAIN findings on the seeded database."""

from __future__ import annotations

import asyncpg
import pytest

from wedsync_perf.database.explain import explain, findings, table_rows

pytestmark = pytest.mark.integration


async def test_unindexed_filter_on_a_big_table_is_an_indexable_seq_scan(
    db: asyncpg.Connection,
) -> None:
    rows = await table_rows(db)
    assert rows["timeline_items"] >= 10_000
    plan = await explain(
        db, "SELECT id FROM timeline_items WHERE title = $1", "Speeches", analyze=True
    )
    [finding] = [f for f in findings(plan, rows) if f.kind == "seq_scan_indexable"]
    assert finding.relation == "timeline_items"
    assert finding.suggestion == "CREATE INDEX CONCURRENTLY ON timeline_items (title)"


async def test_indexed_lookup_has_no_findings(db: asyncpg.Connection) -> None:
    plan = await explain(
        db,
        "SELECT id FROM timeline_items WHERE wedding_id = $1 ORDER BY starts_at",
        5,
        analyze=True,
    )
    assert [f.kind for f in findings(plan, await table_rows(db))] == []


@pytest.mark.parametrize(
    "sql",
    ["DELETE FROM messages", "update suppliers set name = 'x'", "SELECT 1; DROP TABLE x"],
)
async def test_writes_are_never_explained(db: asyncpg.Connection, sql: str) -> None:
    with pytest.raises(ValueError, match="read statement"):
        await explain(db, sql, analyze=True)


async def test_data_modifying_cte_is_stopped_by_the_read_only_transaction(
    db: asyncpg.Connection,
) -> None:
    before = await db.fetchval("SELECT count(*) FROM messages")
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await explain(
            db,
            "WITH gone AS (DELETE FROM messages RETURNING id) SELECT count(*) FROM gone",
            analyze=True,
        )
    assert await db.fetchval("SELECT count(*) FROM messages") == before
