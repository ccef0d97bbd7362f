"""Venue availability and bookings (standard priority). Availability comes through the
query cache (tagged by `venues` and `venue_bookings`); a booking, written through it,
drops its tenant's cached availability once committed."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

import asyncpg
from fastapi import APIRouter, HTTPException, Query, Response

from wedsync_api.deps import Conn, CurrentTenant, ResourceId, ServicesDep, json_response, not_found
from wedsync_api.models import Booking, BookingRequest, DayAvailability, VenueAvailability
from wedsync_perf.priorities import PriorityClass, declare

router = APIRouter(prefix="/venues", tags=["venues"])
STANDARD = declare(PriorityClass.STANDARD)
MAX_RANGE_DAYS = 366


@router.get("/{venue_id}/availability", response_model=VenueAvailability, openapi_extra=STANDARD)
async def venue_availability(
    services: ServicesDep,
    venue_id: ResourceId,
    tenant: CurrentTenant,
    conn: Conn,
    from_: Annotated[date, Query(alias="from", description="First day (inclusive)")],
    to: Annotated[date, Query(description="Last day (inclusive)")],
) -> Response:
    if to < from_:
        raise HTTPException(422, "'to' must not be before 'from'")
    if (to - from_).days >= MAX_RANGE_DAYS:
        raise HTTPException(422, f"range must span at most {MAX_RANGE_DAYS} days")

    queries = services.availability_queries.bind(conn, tenant=tenant.id)
    exists = await queries.fetchval(
        "SELECT 1 FROM venues WHERE tenant_id = $1 AND id = $2", tenant.id, venue_id
    )
    if exists is None:
        raise not_found("venue")
    booked = {
        r["day"]
        for r in await queries.fetch(
            "SELECT day FROM venue_bookings WHERE tenant_id = $1 AND venue_id = $2"
            " AND day BETWEEN $3 AND $4",
            tenant.id,
            venue_id,
            from_,
            to,
        )
    }
    days = [
        DayAvailability(day=d, available=d not in booked)
        for d in (from_ + timedelta(days=i) for i in range((to - from_).days + 1))
    ]
    return json_response(VenueAvailability(venue_id=venue_id, days=days))


@router.post(
    "/{venue_id}/bookings",
    response_model=Booking,
    status_code=201,
    openapi_extra=STANDARD,
    responses={409: {"description": "The venue is already booked that day"}},
)
async def book_venue(
    services: ServicesDep,
    venue_id: ResourceId,
    body: BookingRequest,
    tenant: CurrentTenant,
    conn: Conn,
    response: Response,
) -> Booking:
    queries = services.availability_queries.bind(conn, tenant=tenant.id)
    async with queries.transaction():  # the booking drops cached availability at commit
        exists = await queries.fetchval(
            "SELECT 1 FROM venues WHERE tenant_id = $1 AND id = $2", tenant.id, venue_id
        )
        if exists is None:
            raise not_found("venue")
        if body.wedding_id is not None:
            owned = await queries.fetchval(
                "SELECT 1 FROM weddings WHERE tenant_id = $1 AND id = $2",
                tenant.id,
                body.wedding_id,
            )
            if owned is None:
                raise not_found("wedding")
        try:
            row = await queries.fetchrow(
                "INSERT INTO venue_bookings (tenant_id, venue_id, day, wedding_id)"
                " VALUES ($1, $2, $3, $4) RETURNING id, venue_id, day, wedding_id",
                tenant.id,
                venue_id,
                body.day,
                body.wedding_id,
            )
        except asyncpg.UniqueViolationError:
            raise HTTPException(409, f"venue is already booked on {body.day.isoformat()}") from None
    assert row is not None
    response.headers["Location"] = f"/venues/{venue_id}/availability?from={body.day}&to={body.day}"
    return Booking(**row)
