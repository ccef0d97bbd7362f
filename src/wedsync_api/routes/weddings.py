"""Weddings and the wedding day. The day-of routes are critical: they are what a
supplier on site opens, and what must stay fast on a Saturday."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request, Response

from wedsync_api.caching import cached_json, invalidate
from wedsync_api.deps import Conn, CurrentTenant, ResourceId, not_found
from wedsync_api.models import (
    BookedSupplier,
    Checkin,
    CheckinRequest,
    Message,
    MessageRequest,
    Timeline,
    TimelineItem,
    Vendor,
    VendorList,
    VenueSummary,
    Wedding,
)
from wedsync_perf.priorities import PriorityClass, declare

router = APIRouter(prefix="/weddings", tags=["weddings"])
STANDARD = declare(PriorityClass.STANDARD)
CRITICAL = declare(PriorityClass.CRITICAL)

_OWNED = "SELECT 1 FROM weddings WHERE tenant_id = $1 AND id = $2"
_DATE = "SELECT wedding_date FROM weddings WHERE tenant_id = $1 AND id = $2"


async def _wedding_date(conn: Conn, tenant_id: int, wedding_id: int) -> date:
    """The wedding's date; 404 when the wedding is not this tenant's."""
    day: date | None = await conn.fetchval(_DATE, tenant_id, wedding_id)
    if day is None:
        raise not_found("wedding")
    return day


def _date_of(value: dict[str, Any]) -> date | None:
    raw = value.get("wedding_date")
    return date.fromisoformat(raw) if isinstance(raw, str) else None


@router.get("/{wedding_id}", response_model=Wedding, openapi_extra=STANDARD)
async def get_wedding(
    request: Request, wedding_id: ResourceId, tenant: CurrentTenant, conn: Conn
) -> Response:
    async def load() -> Wedding:
        row = await conn.fetchrow(
            "SELECT w.id, w.wedding_date, w.status, w.guest_count, c.partner_a, c.partner_b,"
            " v.id AS venue_id, v.name AS venue_name, v.region AS venue_region,"
            " v.capacity AS venue_capacity"
            " FROM weddings w JOIN couples c ON c.id = w.couple_id"
            " LEFT JOIN venues v ON v.id = w.venue_id"
            " WHERE w.tenant_id = $1 AND w.id = $2",
            tenant.id,
            wedding_id,
        )
        if row is None:
            raise not_found("wedding")
        suppliers = await conn.fetch(
            "SELECT s.id, s.name, s.category, ws.role FROM wedding_suppliers ws"
            " JOIN suppliers s ON s.id = ws.supplier_id"
            " WHERE ws.tenant_id = $1 AND ws.wedding_id = $2 ORDER BY s.category, s.id",
            tenant.id,
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

    return await cached_json(
        request, tenant_id=tenant.id, key=f"wedding:{wedding_id}", data_class="wedding",
        tags=[f"wedding:{wedding_id}"], load=load, wedding_date=_date_of,
    )  # fmt: skip


@router.get("/{wedding_id}/timeline", response_model=Timeline, openapi_extra=CRITICAL)
async def get_timeline(
    request: Request, wedding_id: ResourceId, tenant: CurrentTenant, conn: Conn
) -> Response:
    async def load() -> Timeline:
        day = await _wedding_date(conn, tenant.id, wedding_id)
        rows = await conn.fetch(
            "SELECT id, starts_at, ends_at, title, location, supplier_id FROM timeline_items"
            " WHERE tenant_id = $1 AND wedding_id = $2 ORDER BY starts_at, id",
            tenant.id,
            wedding_id,
        )
        items = [TimelineItem(**dict(r)) for r in rows]
        return Timeline(wedding_id=wedding_id, wedding_date=day, items=items)

    return await cached_json(
        request, tenant_id=tenant.id, key=f"timeline:{wedding_id}",
        data_class="wedding_timeline", tags=[f"wedding:{wedding_id}"], load=load,
        wedding_date=_date_of,
    )  # fmt: skip


@router.get("/{wedding_id}/vendors", response_model=VendorList, openapi_extra=CRITICAL)
async def get_vendors(
    request: Request, wedding_id: ResourceId, tenant: CurrentTenant, conn: Conn
) -> Response:
    async def load() -> VendorList:
        day = await _wedding_date(conn, tenant.id, wedding_id)
        rows = await conn.fetch(
            "SELECT s.id AS supplier_id, s.name, s.category, ws.role, s.email, s.phone,"
            " ws.arrival_status, ws.arrived_at FROM wedding_suppliers ws"
            " JOIN suppliers s ON s.id = ws.supplier_id"
            " WHERE ws.tenant_id = $1 AND ws.wedding_id = $2 ORDER BY s.category, s.id",
            tenant.id,
            wedding_id,
        )
        vendors = [Vendor(**dict(r)) for r in rows]
        return VendorList(wedding_id=wedding_id, wedding_date=day, vendors=vendors)

    # Contacts: the "wedding_vendors" data class is sealed (AES-GCM) in the shared cache.
    return await cached_json(
        request, tenant_id=tenant.id, key=f"vendors:{wedding_id}",
        data_class="wedding_vendors", tags=[f"wedding:{wedding_id}"], load=load,
        wedding_date=_date_of,
    )  # fmt: skip


@router.post(
    "/{wedding_id}/checkins", response_model=Checkin, status_code=201, openapi_extra=CRITICAL
)
async def check_in(
    request: Request,
    wedding_id: ResourceId,
    body: CheckinRequest,
    tenant: CurrentTenant,
    conn: Conn,
) -> Checkin:
    async with conn.transaction():
        updated = await conn.fetchval(
            "UPDATE wedding_suppliers SET arrival_status = $4,"
            " arrived_at = CASE WHEN $4 = 'no_show' THEN NULL ELSE now() END"
            " WHERE tenant_id = $1 AND wedding_id = $2 AND supplier_id = $3 RETURNING 1",
            tenant.id,
            wedding_id,
            body.supplier_id,
            body.status,
        )
        if updated is None:
            raise not_found("supplier booked on this wedding")
        row = await conn.fetchrow(
            "INSERT INTO checkins (tenant_id, wedding_id, supplier_id, status, note)"
            " VALUES ($1, $2, $3, $4, $5)"
            " RETURNING id, wedding_id, supplier_id, status, created_at",
            tenant.id,
            wedding_id,
            body.supplier_id,
            body.status,
            body.note,
        )
    assert row is not None
    await invalidate(request, tenant.id, f"wedding:{wedding_id}")  # event: vendor checked in
    return Checkin(**dict(row))


@router.post(
    "/{wedding_id}/messages", response_model=Message, status_code=201, openapi_extra=CRITICAL
)
async def post_message(
    wedding_id: ResourceId, body: MessageRequest, tenant: CurrentTenant, conn: Conn
) -> Message:
    row = await conn.fetchrow(
        "INSERT INTO messages (tenant_id, wedding_id, sender, body)"
        " SELECT $1, $2, $3, $4 WHERE EXISTS (" + _OWNED + ")"
        " RETURNING id, wedding_id, sender, body, created_at",
        tenant.id,
        wedding_id,
        body.sender,
        body.body,
    )
    if row is None:
        raise not_found("wedding")
    return Message(**dict(row))
