"""Supplier search and profiles (standard priority)."""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from wedsync_api.deps import Conn, CurrentTenant, ResourceId, not_found
from wedsync_api.models import Category, Supplier, SupplierPage, SupplierSummary, Text
from wedsync_perf.priorities import PriorityClass, declare

router = APIRouter(prefix="/suppliers", tags=["suppliers"])
STANDARD = declare(PriorityClass.STANDARD)

_KM_PER_DEGREE = 111.32
_EARTH_RADIUS_KM = 6371.0
# Great-circle distance; least() guards asin against rounding just above 1.
_DISTANCE_SQL = (
    "2 * {r} * asin(least(1, sqrt(power(sin(radians(s.lat - {lat}) / 2), 2) + "
    "cos(radians({lat})) * cos(radians(s.lat)) * power(sin(radians(s.lon - {lon}) / 2), 2))))"
)


@router.get("/search", response_model=SupplierPage, openapi_extra=STANDARD)
async def search_suppliers(
    tenant: CurrentTenant,
    conn: Conn,
    category: Category | None = None,
    region: Annotated[Text | None, Query(max_length=100)] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    radius_km: Annotated[float | None, Query(gt=0, le=500)] = None,
    date_free: Annotated[
        date | None, Query(description="Only suppliers not booked that day")
    ] = None,
    price_max: Annotated[int | None, Query(ge=1, le=4)] = None,
    min_rating: Annotated[float | None, Query(ge=0, le=5)] = None,
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SupplierPage:
    geo = (lat, lon, radius_km)
    if any(v is not None for v in geo) and not all(v is not None for v in geo):
        raise HTTPException(422, "lat, lon and radius_km must be given together")

    args: list[object] = [tenant.id]
    where = ["s.tenant_id = $1"]

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if category is not None:
        where.append(f"s.category = {param(category)}")
    if region is not None:
        where.append(f"s.region = {param(region)}")
    if price_max is not None:
        where.append(f"s.price_band <= {param(price_max)}")
    if min_rating is not None:
        where.append(f"s.rating >= {param(min_rating)}")
    if date_free is not None:
        where.append(
            "NOT EXISTS (SELECT 1 FROM wedding_suppliers ws JOIN weddings w ON w.id = ws.wedding_id"
            f" WHERE ws.supplier_id = s.id AND w.wedding_date = {param(date_free)}"
            " AND w.status <> 'cancelled')"
        )
    distance = "NULL::float8"
    order = "s.rating DESC NULLS LAST, s.id"
    if lat is not None and lon is not None and radius_km is not None:
        # A bounding box the (tenant, lat, lon) index can use, then the exact distance.
        dlat = radius_km / _KM_PER_DEGREE
        dlon = min(180.0, radius_km / (_KM_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01)))
        where.append(f"s.lat BETWEEN {param(lat - dlat)} AND {param(lat + dlat)}")
        if dlon < 180.0:
            where.append(f"s.lon BETWEEN {param(lon - dlon)} AND {param(lon + dlon)}")
        distance = _DISTANCE_SQL.format(r=_EARTH_RADIUS_KM, lat=param(lat), lon=param(lon))
        where.append(f"{distance} <= {param(radius_km)}")
        order = "distance_km, s.id"

    limit = param(page_size + 1)
    offset = param((page - 1) * page_size)
    rows = await conn.fetch(
        f"SELECT s.id, s.name, s.category, s.region, s.rating, s.price_band,"
        f" {distance} AS distance_km FROM suppliers s WHERE {' AND '.join(where)}"
        f" ORDER BY {order} LIMIT {limit} OFFSET {offset}",
        *args,
    )
    items = [SupplierSummary(**dict(r)) for r in rows[:page_size]]
    return SupplierPage(items=items, page=page, page_size=page_size, has_more=len(rows) > page_size)


@router.get("/{supplier_id}", response_model=Supplier, openapi_extra=STANDARD)
async def get_supplier(supplier_id: ResourceId, tenant: CurrentTenant, conn: Conn) -> Supplier:
    row = await conn.fetchrow(
        "SELECT id, name, category, region, rating, price_band, lat, lon, services, email, phone"
        " FROM suppliers WHERE tenant_id = $1 AND id = $2",
        tenant.id,
        supplier_id,
    )
    if row is None:
        raise not_found("supplier")
    return Supplier(**dict(row))
