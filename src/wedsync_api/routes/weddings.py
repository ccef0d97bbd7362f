"""Weddings and the wedding day. The day-of routes are critical: they are what a
supplier on site opens, and what must stay fast on a Saturday.

The three reads are answered from the HTTP response cache (their `CacheRule`s below);
a handler runs only on a miss. Writes invalidate what they change:

| event (write route)  | invalidates            | stays cached                   |
|----------------------|------------------------|--------------------------------|
| vendor checked in    | vendors:{id}           | the timeline, wedding details  |
| message posted       | nothing cached         | everything                     |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Response

from wedsync_api.deps import Conn, CurrentTenant, ResourceId, ServicesDep, json_response, not_found
from wedsync_api.models import (
    Checkin,
    CheckinRequest,
    Message,
    MessageRequest,
    Timeline,
    VendorList,
    Wedding,
)
from wedsync_api.reads import load_timeline, load_vendors, load_wedding
from wedsync_perf.pipeline import CacheRule
from wedsync_perf.priorities import PriorityClass, declare
from wedsync_perf.scaling.fanout import fan_out

router = APIRouter(prefix="/weddings", tags=["weddings"])
CRITICAL = declare(PriorityClass.CRITICAL)
_DATE = "wedding_date"  # the TTL follows the wedding: frozen in its last 72 hours
WEDDING = declare(
    PriorityClass.STANDARD,
    cache=CacheRule("wedding", ("wedding:{wedding_id}",), wedding_date_field=_DATE),
)
TIMELINE = declare(
    PriorityClass.CRITICAL,
    cache=CacheRule("wedding_timeline", ("wedding:{wedding_id}", "timeline:{wedding_id}"), _DATE),
)
# Contacts: the "wedding_vendors" data class is sealed (AES-GCM) in the shared cache.
VENDORS = declare(
    PriorityClass.CRITICAL,
    cache=CacheRule("wedding_vendors", ("wedding:{wedding_id}", "vendors:{wedding_id}"), _DATE),
)

_OWNED = "SELECT 1 FROM weddings WHERE tenant_id = $1 AND id = $2"


@router.get("/{wedding_id}", response_model=Wedding, openapi_extra=WEDDING)
async def get_wedding(wedding_id: ResourceId, tenant: CurrentTenant, conn: Conn) -> Response:
    return json_response(await load_wedding(conn, tenant.id, wedding_id))


@router.get("/{wedding_id}/timeline", response_model=Timeline, openapi_extra=TIMELINE)
async def get_timeline(wedding_id: ResourceId, tenant: CurrentTenant, conn: Conn) -> Response:
    return json_response(await load_timeline(conn, tenant.id, wedding_id))


@router.get("/{wedding_id}/vendors", response_model=VendorList, openapi_extra=VENDORS)
async def get_vendors(wedding_id: ResourceId, tenant: CurrentTenant, conn: Conn) -> Response:
    return json_response(await load_vendors(conn, tenant.id, wedding_id))


@router.get("/{wedding_id}/vendors/live", openapi_extra=CRITICAL)
async def live_vendor_status(
    services: ServicesDep, wedding_id: ResourceId, tenant: CurrentTenant, conn: Conn
) -> dict[str, Any]:
    """Each vendor's own system, asked at once under one deadline (a slow one hedged
    once): whatever answered, with a status per vendor — the day-of list never waits on
    the slowest florist."""
    vendors_client = services.vendors_client
    if vendors_client is None:
        raise HTTPException(404, "no vendor systems configured (WEDSYNC_API_VENDOR_SYSTEMS)")
    listed = await load_vendors(conn, tenant.id, wedding_id)
    deadline = services.settings.vendor_deadline_ms / 1000

    def ask(supplier_id: int) -> Callable[[], Awaitable[Any]]:
        async def call() -> Any:
            response = await vendors_client.get(f"http://vendors/status/{supplier_id}")
            response.raise_for_status()
            return response.json()

        return call

    result = await fan_out(
        {str(v.supplier_id): ask(v.supplier_id) for v in listed.vendors},
        deadline_s=deadline,
        hedge_after_s=deadline / 4,
    )
    return {
        "wedding_id": wedding_id,
        "complete": result.complete,
        "vendors": {
            supplier: {"status": o.status, "detail": o.value, "hedged": o.hedged}
            for supplier, o in result.outcomes.items()
        },
    }


@router.post(
    "/{wedding_id}/checkins", response_model=Checkin, status_code=201, openapi_extra=CRITICAL
)
async def check_in(
    services: ServicesDep,
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
    # Event "vendor checked in": only the vendor list (arrival status) changed; the
    # timeline and wedding details stay cached through the busiest hour of the day.
    await services.cache.invalidate(f"vendors:{wedding_id}", tenant=tenant.id)
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
