"""Workload index advice on the seeded database: it finds the index the workload needs,
costs it with the planner, and leaves the database as it was."""

from __future__ import annotations

import asyncpg
import pytest

from wedsync_perf.database.advisor import Candidate, WorkloadQuery, advise, candidates

pytestmark = pytest.mark.integration


def test_candidates_put_equality_columns_first() -> None:
    found = candidates(
        "SELECT s.id FROM suppliers s WHERE s.tenant_id = $1 AND s.category = $2"
        " AND s.price_band <= $3 ORDER BY s.rating DESC LIMIT 20"
    )
    assert Candidate("suppliers", ("tenant_id", "category")) in found
    assert Candidate("suppliers", ("tenant_id", "category", "price_band")) in found
    assert Candidate("suppliers", ("tenant_id", "category", "rating")) in found
    assert Candidate("suppliers", ("price_band",)) in found
    assert candidates("UPDATE suppliers SET name = $1 WHERE id = $2") == set()


async def test_advice_cuts_the_workload_cost_and_creates_nothing(db: asyncpg.Connection) -> None:
    indexes_before = await db.fetchval(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
    )
    workload = [
        WorkloadQuery("SELECT id FROM timeline_items WHERE title = $1", ("Speeches",), weight=10),
        WorkloadQuery(
            "SELECT id FROM timeline_items t WHERE t.location = $1 AND t.title = $2",
            ("Grounds", "Ceremony"),
        ),
        WorkloadQuery(
            "SELECT starts_at FROM timeline_items WHERE wedding_id = $1 ORDER BY starts_at", (5,)
        ),
    ]
    advice = await advise(db, workload)
    assert advice.suggestions, "expected at least one index"
    first = advice.suggestions[0].candidate
    assert first.table == "timeline_items"
    assert first.columns[0] == "title"
    assert advice.relative_cost < 0.6  # the indexed third query keeps its cost
    assert all(
        s.candidate.statement.startswith("CREATE INDEX CONCURRENTLY") for s in advice.suggestions
    )
    # (wedding_id, starts_at) exists already: never suggested again.
    assert Candidate("timeline_items", ("wedding_id", "starts_at")) not in {
        s.candidate for s in advice.suggestions
    }
    assert advice.whatif_calls > 1
    indexes_after = await db.fetchval("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")
    assert indexes_after == indexes_before
