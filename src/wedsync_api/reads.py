"""The reads the cached routes answer with and the warmer pre-loads: one loader per
read, so a warmed entry is exactly what the route would have cached (the cache rule
itself is the route's declaration)."""

from __future__ import annotations

from datetime import date

from fastapi import HTTPException

from wedsync_api.models import (
    BookedSupplier,
    Supplier,
    Timeline,
    TimelineItem,
    Vendor,
    VendorList,
    VenueSummary,
    Wedding,
)
from wedsync_perf.database.lazy import Statements

__all__ = ["load_supplier", "load_timeline", "load_vendors", "load_wedding"]


def _missing(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{what} not found")


async def _wedding_date(conn: Statements, tenant_id: int, wedding_id: int) -> date:
    day: date | None = await conn.fetchval(
        "SELECT wedding_date FROM weddings WHERE tenant_id = $1 AND id = $2", tenant_id, wedding_id
    )
    if day is None:
        raise _missing("wedding")
    return day


async def load_supplier(conn: Statements, tenant_id: int, supplier_id: int) -> Supplier:
    row = await conn.fetchrow(
        "SELECT id, name, category, region, rating, price_band, lat, lon, services, email,"
        " phone FROM suppliers WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        supplier_id,
    )
    if row is None:
        raise _missing("supplier")
    return Supplier(**dict(row))


async def load_wedding(conn: Statements, tenant_id: int, wedding_id: int) -> Wedding:
    row = await conn.fetchrow(
        "SELECT w.id, w.wedding_date, w.status, w.guest_count, c.partner_a, c.partner_b,"
        " v.id AS venue_id, v.name AS venue_name, v.region AS venue_region,"
        " v.capacity AS venue_capacity"
        " FROM weddings w JOIN couples c ON c.id = w.couple_id"
        " LEFT JOIN venues v ON v.id = w.venue_id"
        " WHERE w.tenant_id = $1 AND w.id = $2",
        tenant_id,
        wedding_id,
    )
    if row is None:
        raise _missing("wedding")
    suppliers = await conn.fetch(
        "SELECT s.id, s.name, s.category, ws.role FROM wedding_suppliers ws"
        " JOIN suppliers s ON s.id = ws.supplier_id"
        " WHERE ws.tenant_id = $1 AND ws.wedding_id = $2 ORDER BY s.category, s.id",
        tenant_id,
        wedding_id,
    )
    venue = None
    if row["venue_id"] is not None:
        venue = VenueSummary(
            id=row["venue_id"],
            name=row["venue_name"],
            region=row["venue_region"],
            capacity=row["venue_capacity"],
        )
    return Wedding(
        id=row["id"],
        wedding_date=row["wedding_date"],
        status=row["status"],
        guest_count=row["guest_count"],
        couple=[row["partner_a"], row["partner_b"]],
        venue=venue,
        suppliers=[BookedSupplier(**dict(s)) for s in suppliers],
    )


async def load_timeline(conn: Statements, tenant_id: int, wedding_id: int) -> Timeline:
    day = await _wedding_date(conn, tenant_id, wedding_id)
    rows = await conn.fetch(
        "SELECT id, starts_at, ends_at, title, location, supplier_id FROM timeline_items"
        " WHERE tenant_id = $1 AND wedding_id = $2 ORDER BY starts_at, id",
        tenant_id,
        wedding_id,
    )
    return Timeline(
        wedding_id=wedding_id, wedding_date=day, items=[TimelineItem(**dict(r)) for r in rows]
    )


async def load_vendors(conn: Statements, tenant_id: int, wedding_id: int) -> VendorList:
    day = await _wedding_date(conn, tenant_id, wedding_id)
    rows = await conn.fetch(
        "SELECT s.id AS supplier_id, s.name, s.category, ws.role, s.email, s.phone,"
        " ws.arrival_status, ws.arrived_at FROM wedding_suppliers ws"
        " JOIN suppliers s ON s.id = ws.supplier_id"
        " WHERE ws.tenant_id = $1 AND ws.wedding_id = $2 ORDER BY s.category, s.id",
        tenant_id,
        wedding_id,
    )
    return VendorList(
        wedding_id=wedding_id, wedding_date=day, vendors=[Vendor(**dict(r)) for r in rows]
    )
