"""The simulated wedding Saturday the demo drives: real IDs from the seeded database,
requests spread over every route, labelled by route template."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

import asyncpg
import httpx

from wedsync_api.auth import API_KEY_HEADER
from wedsync_api.models import CATEGORIES
from wedsync_api.seed import REGIONS, demo_api_key
from wedsync_perf.loadgen import RequestSpec
from wedsync_perf.priorities import PriorityClass

__all__ = ["TenantSample", "WeddingSaturday"]

_CRITICAL = ("timeline", "vendors", "checkin", "message")
_CRITICAL_W = (40, 30, 15, 15)
_STANDARD = ("search", "supplier", "wedding", "availability", "booking")
_STANDARD_W = (40, 25, 20, 10, 5)
_IMPORT_ROWS = 50


@dataclass
class TenantSample:
    tenant_id: int
    api_key: str
    weddings: list[tuple[int, list[int]]]  # (wedding id, booked supplier ids) on the day
    other_weddings: list[int]
    suppliers: list[int]
    venues: list[int]
    imports: list[str] = field(default_factory=list)


@dataclass
class WeddingSaturday:
    """Traffic of the busiest Saturday in the seeded data, across every tenant."""

    day: date
    tenants: list[TenantSample]
    _import_serial: int = 0

    @classmethod
    async def from_database(cls, conn: asyncpg.Connection, seed: int) -> WeddingSaturday:
        day = await conn.fetchval(
            "SELECT wedding_date FROM weddings WHERE extract(isodow FROM wedding_date) = 6"
            " GROUP BY wedding_date ORDER BY count(*) DESC, wedding_date LIMIT 1"
        )
        if day is None:
            raise RuntimeError("the database holds no weddings; seed it first")
        tenants: list[TenantSample] = []
        for tenant_id in [r["id"] for r in await conn.fetch("SELECT id FROM tenants ORDER BY id")]:
            on_day = await conn.fetch(
                "SELECT w.id, array_agg(ws.supplier_id ORDER BY ws.supplier_id) AS vendors"
                " FROM weddings w JOIN wedding_suppliers ws ON ws.wedding_id = w.id"
                " WHERE w.tenant_id = $1 AND w.wedding_date = $2 GROUP BY w.id ORDER BY w.id",
                tenant_id,
                day,
            )
            others = await conn.fetch(
                "SELECT id FROM weddings WHERE tenant_id = $1 ORDER BY id LIMIT 200", tenant_id
            )
            suppliers = await conn.fetch(
                "SELECT id FROM suppliers WHERE tenant_id = $1 ORDER BY id LIMIT 500", tenant_id
            )
            venues = await conn.fetch(
                "SELECT id FROM venues WHERE tenant_id = $1 ORDER BY id LIMIT 100", tenant_id
            )
            if not (on_day and suppliers and venues):
                continue
            tenants.append(
                TenantSample(
                    tenant_id=tenant_id,
                    api_key=demo_api_key(seed, tenant_id),
                    weddings=[(r["id"], list(r["vendors"])) for r in on_day],
                    other_weddings=[r["id"] for r in others],
                    suppliers=[r["id"] for r in suppliers],
                    venues=[r["id"] for r in venues],
                )
            )
        if not tenants:
            raise RuntimeError(f"no tenant has weddings, suppliers and venues on {day}")
        return cls(day=day, tenants=tenants)

    def next_request(self, priority: PriorityClass, rng: random.Random) -> RequestSpec:
        # Big accounts send more traffic: weight tenants by their weddings that day.
        tenant = rng.choices(self.tenants, weights=[len(t.weddings) for t in self.tenants])[0]
        headers = {API_KEY_HEADER: tenant.api_key}
        if priority is PriorityClass.CRITICAL:
            return self._critical(tenant, headers, rng)
        if priority is PriorityClass.STANDARD:
            return self._standard(tenant, headers, rng)
        return self._bulk(tenant, headers, rng)

    def _critical(
        self, tenant: TenantSample, headers: dict[str, str], rng: random.Random
    ) -> RequestSpec:
        wedding_id, vendors = rng.choice(tenant.weddings)
        kind = rng.choices(_CRITICAL, _CRITICAL_W)[0]
        crit = PriorityClass.CRITICAL
        if kind == "timeline":
            return RequestSpec(
                "GET /weddings/{id}/timeline", crit, "GET", f"/weddings/{wedding_id}/timeline",
                headers=headers,
            )  # fmt: skip
        if kind == "vendors":
            return RequestSpec(
                "GET /weddings/{id}/vendors", crit, "GET", f"/weddings/{wedding_id}/vendors",
                headers=headers,
            )  # fmt: skip
        if kind == "checkin":
            return RequestSpec(
                "POST /weddings/{id}/checkins", crit, "POST", f"/weddings/{wedding_id}/checkins",
                expected=frozenset({201}), headers=headers,
                json={"supplier_id": rng.choice(vendors), "status": "arrived"},
            )  # fmt: skip
        return RequestSpec(
            "POST /weddings/{id}/messages", crit, "POST", f"/weddings/{wedding_id}/messages",
            expected=frozenset({201}), headers=headers,
            json={"sender": "coordinator", "body": "Ceremony running 10 minutes late"},
        )  # fmt: skip

    def _standard(
        self, tenant: TenantSample, headers: dict[str, str], rng: random.Random
    ) -> RequestSpec:
        kind = rng.choices(_STANDARD, _STANDARD_W)[0]
        std = PriorityClass.STANDARD
        if kind == "search":
            params: dict[str, str | int | float] = {"category": rng.choice(CATEGORIES)}
            if rng.random() < 0.5:
                params["region"] = rng.choice(REGIONS)[0]
            else:
                _, lat, lon = rng.choice(REGIONS)
                params.update(lat=lat, lon=lon, radius_km=40)
            if rng.random() < 0.3:
                params["date_free"] = (
                    self.day + timedelta(days=7 * rng.randint(1, 30))
                ).isoformat()
            query = str(httpx.QueryParams(params))
            return RequestSpec(
                "GET /suppliers/search", std, "GET", f"/suppliers/search?{query}", headers=headers
            )
        if kind == "supplier":
            sid = rng.choice(tenant.suppliers)
            return RequestSpec(
                "GET /suppliers/{id}", std, "GET", f"/suppliers/{sid}", headers=headers
            )
        if kind == "wedding":
            wid = rng.choice(tenant.other_weddings)
            return RequestSpec(
                "GET /weddings/{id}", std, "GET", f"/weddings/{wid}", headers=headers
            )
        venue = rng.choice(tenant.venues)
        start = self.day + timedelta(days=rng.randint(0, 365))
        if kind == "availability":
            end = start + timedelta(days=90)
            return RequestSpec(
                "GET /venues/{id}/availability", std, "GET",
                f"/venues/{venue}/availability?from={start}&to={end}", headers=headers,
            )  # fmt: skip
        return RequestSpec(
            "POST /venues/{id}/bookings", std, "POST", f"/venues/{venue}/bookings",
            expected=frozenset({201, 409}), headers=headers, json={"day": start.isoformat()},
        )  # fmt: skip

    def _bulk(
        self, tenant: TenantSample, headers: dict[str, str], rng: random.Random
    ) -> RequestSpec:
        bulk = PriorityClass.BULK
        if tenant.imports and rng.random() < 0.7:
            import_id = rng.choice(tenant.imports)
            return RequestSpec(
                "GET /imports/{id}", bulk, "GET", f"/imports/{import_id}", headers=headers
            )
        self._import_serial += 1
        lines = ["name,category,region,lat,lon,price_band,services"]
        for i in range(_IMPORT_ROWS):
            region, lat, lon = rng.choice(REGIONS)
            lines.append(
                f"Onboarded {self._import_serial}-{i},{rng.choice(CATEGORIES)},{region},"
                f"{lat:.4f},{lon:.4f},{rng.randint(1, 4)},full day;travel"
            )
        body = ("\n".join(lines) + "\n").encode()

        def remember(response: httpx.Response) -> None:
            tenant.imports.append(response.json()["id"])
            del tenant.imports[:-50]

        return RequestSpec(
            "POST /imports/suppliers", bulk, "POST", "/imports/suppliers",
            expected=frozenset({201}), headers={**headers, "Content-Type": "text/csv"},
            content=body, on_response=remember,
        )  # fmt: skip
