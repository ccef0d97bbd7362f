"""The reference API's read workload, for the index advisor when pg_stat_statements
cannot supply one: each route's statement with real sample values, weighted by how
often a wedding Saturday runs it (the demo's traffic mix)."""

from __future__ import annotations

from datetime import date

import asyncpg

from wedsync_api.warming import WARMING_SQL
from wedsync_perf.database.advisor import WorkloadQuery

__all__ = ["reference_workload"]


async def reference_workload(conn: asyncpg.Connection) -> list[WorkloadQuery]:
    row = await conn.fetchrow(
        "SELECT w.tenant_id, w.id AS wedding, w.venue_id, ws.supplier_id, w.wedding_date"
        " FROM weddings w JOIN wedding_suppliers ws ON ws.wedding_id = w.id"
        " WHERE w.venue_id IS NOT NULL ORDER BY w.id LIMIT 1"
    )
    if row is None:
        raise RuntimeError("the database holds no weddings with vendors and a venue; seed it")
    tenant, wedding, venue, supplier, day = (
        row["tenant_id"],
        row["wedding"],
        row["venue_id"],
        row["supplier_id"],
        row["wedding_date"],
    )
    return [
        WorkloadQuery("SELECT wedding_date FROM weddings WHERE tenant_id = $1 AND id = $2",
                      (tenant, wedding), 70),
        WorkloadQuery("SELECT id, starts_at, ends_at, title, location, supplier_id FROM timeline_items"
                      " WHERE tenant_id = $1 AND wedding_id = $2 ORDER BY starts_at, id",
                      (tenant, wedding), 40),
        WorkloadQuery("SELECT s.id, s.name, ws.role, ws.arrival_status FROM wedding_suppliers ws"
                      " JOIN suppliers s ON s.id = ws.supplier_id"
                      " WHERE ws.tenant_id = $1 AND ws.wedding_id = $2 ORDER BY s.category, s.id",
                      (tenant, wedding), 30),
        WorkloadQuery("SELECT id, name FROM suppliers WHERE tenant_id = $1 AND id = $2",
                      (tenant, supplier), 15),
        WorkloadQuery("SELECT s.id, s.name FROM suppliers s WHERE s.tenant_id = $1 AND s.category = $2"
                      " AND s.region = $3 ORDER BY s.rating DESC NULLS LAST, s.id LIMIT 21",
                      (tenant, "florist", "london"), 10),
        WorkloadQuery("SELECT s.id, s.name FROM suppliers s WHERE s.tenant_id = $1 AND s.category = $2"
                      " AND s.price_band <= $3 ORDER BY s.rating DESC NULLS LAST, s.id LIMIT 21",
                      (tenant, "photographer", 2), 5),
        WorkloadQuery("SELECT day FROM venue_bookings WHERE tenant_id = $1 AND venue_id = $2"
                      " AND day BETWEEN $3::date AND $4::date",
                      (tenant, venue, date(2026, 6, 1), date(2026, 8, 31)), 5),
        WorkloadQuery("SELECT id, sender, body FROM messages WHERE tenant_id = $1 AND wedding_id = $2"
                      " ORDER BY created_at DESC LIMIT 50", (tenant, wedding), 3),
        WorkloadQuery("SELECT s.id, s.name FROM suppliers s WHERE s.tenant_id = $1 AND s.name ILIKE $2"
                      " ORDER BY s.rating DESC NULLS LAST, s.id LIMIT 21", (tenant, "%oak%"), 3),
        WorkloadQuery(WARMING_SQL, (day,), 1),  # the cache warmer, once per wedding day
    ]  # fmt: skip
