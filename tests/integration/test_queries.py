"""Fingerprints and N+1 detection on a real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.conftest import api_settings, key_for, running
from wedsync_api.app import create_app, services_of
from wedsync_perf.database.fingerprint import fingerprint, shape
from wedsync_perf.database.queries import QueryTracker, RequestQueries

pytestmark = pytest.mark.integration


def test_fingerprints_collapse_literals_in_lists_and_aliases() -> None:
    a = fingerprint("SELECT id FROM suppliers s WHERE s.id IN (1, 2, 3) AND name = 'x'")
    b = fingerprint("select id from suppliers t where t.id in (7) and name = 'y'")
    c = fingerprint("SELECT id FROM venues WHERE id IN (1, 2, 3)")
    assert a == b
    assert a != c
    assert "'x'" not in shape("SELECT id FROM suppliers s WHERE name = 'x'")


def test_aliases_in_the_select_list_collapse_too() -> None:
    # The select list comes before FROM: renaming must know every alias first.
    a = fingerprint(
        "SELECT s.id FROM suppliers s JOIN wedding_suppliers ws ON ws.supplier_id = s.id"
    )
    b = fingerprint("SELECT x.id FROM suppliers x JOIN wedding_suppliers y ON y.supplier_id = x.id")
    swapped = fingerprint(
        "SELECT y.id FROM suppliers x JOIN wedding_suppliers y ON y.supplier_id = x.id"
    )
    assert a == b
    assert a != swapped  # the other table's id: a different query
    assert shape('SELECT "S".id FROM suppliers "S"') == "SELECT a1.id FROM suppliers a1"


async def test_n_plus_one_is_flagged_and_batching_is_not(db: asyncpg.Connection) -> None:
    tracker = QueryTracker()
    looped = RequestQueries()
    db.add_query_logger(looped.observe)
    try:
        for supplier in range(1, 7):  # one query per vendor: the N+1 shape
            await db.fetchval("SELECT name, pg_sleep(0.01) FROM suppliers WHERE id = $1", supplier)
    finally:
        await asyncio.sleep(0)  # asyncpg delivers log records with call_soon: one turn
        db.remove_query_logger(looped.observe)
    [finding] = tracker.finish("/weddings/{wedding_id}/vendors", looped)
    assert finding.repeats == 6
    assert finding.total_ms >= 50
    assert finding.route == "/weddings/{wedding_id}/vendors"
    assert "suppliers" in finding.shape

    batched = RequestQueries()
    db.add_query_logger(batched.observe)
    try:
        await db.fetch(
            "SELECT name, pg_sleep(0.06) FROM suppliers WHERE id = ANY($1::bigint[]) LIMIT 1",
            list(range(1, 7)),
        )
    finally:
        await asyncio.sleep(0)
        db.remove_query_logger(batched.observe)
    assert tracker.finish("/weddings/{wedding_id}/vendors/batched", batched) == []
    fast = RequestQueries()
    for _ in range(10):  # many repeats but quick: under the 50 ms bar
        fast.add("SELECT 1", 0.001)
    assert tracker.finish("/cheap", fast) == []


async def test_api_routes_report_their_queries(seeded_dsn: str, db: asyncpg.Connection) -> None:
    wedding = await db.fetchval("SELECT min(id) FROM weddings WHERE tenant_id = 1")
    app = create_app(api_settings(), dsn=seeded_dsn)
    async with running(app) as client:
        for _ in range(3):
            await client.get(f"/weddings/{wedding}/timeline", headers=key_for(1))
        tracker: QueryTracker = services_of(app).queries
    stats = tracker.routes["/weddings/{wedding_id}/timeline"]
    # date + items on the first request; the two cache hits were answered by the fast
    # path before the handler (no connection, so nothing to count).
    assert (stats.requests, stats.queries) == (1, 2)
    assert not tracker.findings
