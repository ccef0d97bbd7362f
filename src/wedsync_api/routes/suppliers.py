"""Supplier search and profiles (standard priority).

A profile is answered from the HTTP response cache (tag `supplier:{id}`); a search's
rows come from the query cache, tagged by the tables the query reads, so an import
(COPY into `suppliers`) drops every cached search of its tenant."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from wedsync_api.deps import Conn, CurrentTenant, ResourceId, ServicesDep, json_response
from wedsync_api.models import Category, Supplier, SupplierPage, SupplierSummary, Text
from wedsync_api.reads import load_supplier
from wedsync_perf.caching.query import CachedQueries
from wedsync_perf.pipeline import CacheRule
from wedsync_perf.priorities import PriorityClass, declare

router = APIRouter(prefix="/suppliers", tags=["suppliers"])
STANDARD = declare(PriorityClass.STANDARD)
PROFILE = declare(
    PriorityClass.STANDARD, cache=CacheRule("supplier_profile", ("supplier:{supplier_id}",))
)

_KM_PER_DEGREE = 111.32
_EARTH_RADIUS_KM = 6371.0
# Great-circle distance; least() guards asin against rounding just above 1.
_DISTANCE_SQL = (
    "2 * {r} * asin(least(1, sqrt(power(sin(radians(s.lat - {lat}) / 2), 2) + "
    "cos(radians({lat})) * cos(radians(s.lat)) * power(sin(radians(s.lon - {lon}) / 2), 2))))"
)


@dataclass(frozen=True)
class SearchFilters:
    category: str | None
    region: str | None
    lat: float | None
    lon: float | None
    radius_km: float | None
    date_free: date | None
    price_max: int | None
    min_rating: float | None
    page: int
    page_size: int
    name: str | None = None


@router.get("/search", response_model=SupplierPage, openapi_extra=STANDARD)
async def search_suppliers(
    services: ServicesDep,
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
    name: Annotated[
        Text | None,
        Query(min_length=3, max_length=100, description="Part of the supplier's name"),
    ] = None,
) -> Response:
    geo = (lat, lon, radius_km)
    if any(v is not None for v in geo) and not all(v is not None for v in geo):
        raise HTTPException(422, "lat, lon and radius_km must be given together")
    # Coordinates to a micrometre-scale 6 decimals: PostgreSQL's float8 maths raises on
    # underflow (a fuzzer's 1e-300 became a 500), and finer precision means nothing here.
    lat, lon, radius_km, min_rating = (
        None if v is None else round(v, 6) for v in (lat, lon, radius_km, min_rating)
    )
    if radius_km is not None and radius_km <= 0:
        raise HTTPException(422, "radius_km must be at least 0.000001")
    filters = SearchFilters(
        category, region, lat, lon, radius_km, date_free, price_max, min_rating, page, page_size,
        name,
    )  # fmt: skip

    queries = services.search_queries.bind(conn, tenant=tenant.id)
    return json_response(await _search(queries, tenant.id, filters))


async def _search(queries: CachedQueries, tenant_id: int, f: SearchFilters) -> SupplierPage:
    args: list[object] = [tenant_id]
    where = ["s.tenant_id = $1"]

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if f.category is not None:
        where.append(f"s.category = {param(f.category)}")
    if f.region is not None:
        where.append(f"s.region = {param(f.region)}")
    if f.price_max is not None:
        where.append(f"s.price_band <= {param(f.price_max)}")
    if f.min_rating is not None:
        where.append(f"s.rating >= {param(f.min_rating)}")
    if f.name is not None:  # the user's text is a literal: LIKE's wildcards escaped
        escaped = f.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(f"s.name ILIKE {param('%' + escaped + '%')}")
    if f.date_free is not None:
        where.append(
            "NOT EXISTS (SELECT 1 FROM wedding_suppliers ws JOIN weddings w ON w.id = ws.wedding_id"
            f" WHERE ws.supplier_id = s.id AND w.wedding_date = {param(f.date_free)}"
            " AND w.status <> 'cancelled')"
        )
    distance = "NULL::float8"
    order = "s.rating DESC NULLS LAST, s.id"
    if f.lat is not None and f.lon is not None and f.radius_km is not None:
        # A bounding box the (tenant, lat, lon) index can use, then the exact distance.
        dlat = f.radius_km / _KM_PER_DEGREE
        cos_lat = max(math.cos(math.radians(f.lat)), 0.01)
        dlon = min(180.0, f.radius_km / (_KM_PER_DEGREE * cos_lat))
        where.append(f"s.lat BETWEEN {param(f.lat - dlat)} AND {param(f.lat + dlat)}")
        if dlon < 180.0:
            where.append(f"s.lon BETWEEN {param(f.lon - dlon)} AND {param(f.lon + dlon)}")
        distance = _DISTANCE_SQL.format(r=_EARTH_RADIUS_KM, lat=param(f.lat), lon=param(f.lon))
        where.append(f"{distance} <= {param(f.radius_km)}")
        order = "distance_km, s.id"

    limit = param(f.page_size + 1)
    offset = param((f.page - 1) * f.page_size)
    rows = await queries.fetch(
        f"SELECT s.id, s.name, s.category, s.region, s.rating, s.price_band,"
        f" {distance} AS distance_km FROM suppliers s WHERE {' AND '.join(where)}"
        f" ORDER BY {order} LIMIT {limit} OFFSET {offset}",
        *args,
    )
    items = [SupplierSummary(**r) for r in rows[: f.page_size]]
    return SupplierPage(
        items=items, page=f.page, page_size=f.page_size, has_more=len(rows) > f.page_size
    )


@router.get("/{supplier_id}", response_model=Supplier, openapi_extra=PROFILE)
async def get_supplier(supplier_id: ResourceId, tenant: CurrentTenant, conn: Conn) -> Response:
    return json_response(await load_supplier(conn, tenant.id, supplier_id))
