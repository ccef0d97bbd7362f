"""Workload index advice on the seeded database: it finds the index the workload needs,
costs it with the planner, and leaves the database as it was."""

from __future__ import annotations

import asyncpg
import pytest

from wedsync_perf.database.advisor import (
    Candidate,
    WorkloadQuery,
    advise,
    candidates,
    existing_findings,
    measure_workload,
)

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


def test_hot_status_filters_give_partial_indexes_and_like_gives_trigram() -> None:
    found = candidates(
        "SELECT w.id FROM weddings w JOIN wedding_suppliers ws ON ws.wedding_id = w.id"
        " WHERE w.wedding_date = $1 AND w.status <> 'cancelled' ORDER BY w.tenant_id"
    )
    assert Candidate("weddings", ("wedding_date",), where="status <> 'cancelled'") in found
    assert Candidate("wedding_suppliers", ("wedding_id",)) in found  # from the JOIN ... ON
    like = candidates("SELECT id FROM suppliers WHERE name ILIKE $1")
    assert Candidate("suppliers", ("name",), method="gin_trgm") in like
    assert like == {Candidate("suppliers", ("name",), method="gin_trgm")}
    statement = Candidate("suppliers", ("name",), method="gin_trgm").statement
    assert statement == "CREATE INDEX CONCURRENTLY ON suppliers USING gin (name gin_trgm_ops)"


async def test_whatif_uses_hypopg_exactly_when_the_server_has_it(db: asyncpg.Connection) -> None:
    available = await db.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'")
    advice = await advise(db, [WorkloadQuery("SELECT id FROM suppliers WHERE email = $1", ("x",))])
    assert advice.method == ("hypopg" if available else "rolled-back indexes")
    assert advice.suggestions[0].candidate == Candidate("suppliers", ("email",))
    assert advice.suggestions[0].size_bytes > 0


async def test_trigram_and_partial_suggestions_cut_measured_time(db: asyncpg.Connection) -> None:
    workload = [
        WorkloadQuery("SELECT id FROM timeline_items WHERE title ILIKE $1", ("%vows%",), weight=5),
        WorkloadQuery(
            "SELECT id FROM timeline_items WHERE title = $1 AND supplier_id IS NULL"
            " AND location <> 'Grounds'",
            ("Speeches",),
        ),
    ]
    advice = await advise(db, workload)
    chosen = {s.candidate for s in advice.suggestions}
    assert Candidate("timeline_items", ("title",), method="gin_trgm") in chosen
    assert any(c.where == "location <> 'Grounds'" for c in chosen)
    assert all(s.table_writes > 0 for s in advice.suggestions)  # the seed wrote them
    before = await measure_workload(db, workload, repeats=3, rounds=1)
    after = await measure_workload(db, workload, list(chosen), repeats=3, rounds=1)
    assert after < before  # seq scans of the whole table vs indexes: no close call
    assert await db.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'") == 0


async def test_existing_findings_name_duplicate_covered_and_unused(db: asyncpg.Connection) -> None:
    async with db.transaction():
        await db.execute("CREATE TABLE wsp_probe (a int, b int, c int)")
        await db.execute("CREATE INDEX wsp_probe_ab ON wsp_probe (a, b)")
        await db.execute("CREATE INDEX wsp_probe_ab2 ON wsp_probe (a, b)")
        await db.execute("CREATE INDEX wsp_probe_a ON wsp_probe (a)")
        await db.execute("CREATE UNIQUE INDEX wsp_probe_c ON wsp_probe (c)")
        found = {f.index: f for f in await existing_findings(db) if f.table == "wsp_probe"}
        unused = [
            f for f in await existing_findings(db, min_table_scans=0) if f.table == "wsp_probe"
        ]
        await db.execute("ROLLBACK; BEGIN")  # leave nothing behind, whatever happens next
    assert found["wsp_probe_ab2"].kind == "duplicate"
    assert found["wsp_probe_a"].kind == "covered"
    assert found["wsp_probe_a"].suggestion == "DROP INDEX CONCURRENTLY wsp_probe_a"
    assert "wsp_probe_ab" not in found  # the one kept: not flagged at all on a fresh table
    assert "wsp_probe_c" not in found  # unique: it enforces something
    assert {f.index for f in unused if f.kind == "unused"} == {"wsp_probe_ab"}


def test_unparsable_statements_give_no_candidates() -> None:
    assert candidates("SELECT id FROM suppliers WHERE name = ") == set()


async def test_system_catalogs_in_the_workload_are_never_indexed(db: asyncpg.Connection) -> None:
    workload = [
        WorkloadQuery("SELECT 1 FROM pg_database WHERE datname = $1", ("postgres",), weight=50),
        WorkloadQuery("SELECT id FROM suppliers WHERE email = $1", ("x",)),
    ]
    advice = await advise(db, workload)
    assert {s.candidate.table for s in advice.suggestions} == {"suppliers"}
