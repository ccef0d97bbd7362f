"""No API key of tenant B ever sees tenant A's rows, on any route."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.conftest import key_for

pytestmark = pytest.mark.integration


async def _owned_ids(db: asyncpg.Connection, tenant_id: int) -> dict[str, object]:
    wedding = await db.fetchrow(
        "SELECT w.id, min(ws.supplier_id) AS supplier FROM weddings w"
        " JOIN wedding_suppliers ws ON ws.wedding_id = w.id WHERE w.tenant_id = $1"
        " GROUP BY w.id ORDER BY w.id LIMIT 1",
        tenant_id,
    )
    assert wedding is not None
    return {
        "wedding": wedding["id"],
        "vendor": wedding["supplier"],
        "supplier": await db.fetchval(
            "SELECT min(id) FROM suppliers WHERE tenant_id = $1", tenant_id
        ),
        "venue": await db.fetchval("SELECT min(id) FROM venues WHERE tenant_id = $1", tenant_id),
    }


def _requests(ids: dict[str, object]) -> list[tuple[str, str, dict[str, object] | None]]:
    w, v = ids["wedding"], ids["venue"]
    return [
        ("GET", f"/suppliers/{ids['supplier']}", None),
        ("GET", f"/venues/{v}/availability?from=2026-06-01&to=2026-06-30", None),
        ("POST", f"/venues/{v}/bookings", {"day": "2031-01-04"}),
        ("GET", f"/weddings/{w}", None),
        ("GET", f"/weddings/{w}/timeline", None),
        ("GET", f"/weddings/{w}/vendors", None),
        ("POST", f"/weddings/{w}/checkins", {"supplier_id": ids["vendor"]}),
        ("POST", f"/weddings/{w}/messages", {"sender": "intruder", "body": "hello"}),
    ]


async def test_other_tenants_rows_look_missing(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    ids = await _owned_ids(db, tenant_id=1)
    writes_before = await db.fetchval(
        "SELECT (SELECT count(*) FROM venue_bookings) + (SELECT count(*) FROM checkins)"
        " + (SELECT count(*) FROM messages)"
    )
    for method, path, body in _requests(ids):
        response = await client.request(method, path, json=body, headers=key_for(2))
        assert response.status_code == 404, (method, path, response.text)
    writes_after = await db.fetchval(
        "SELECT (SELECT count(*) FROM venue_bookings) + (SELECT count(*) FROM checkins)"
        " + (SELECT count(*) FROM messages)"
    )
    assert writes_after == writes_before


async def test_owner_sees_its_rows(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    ids = await _owned_ids(db, tenant_id=1)
    for method, path, _ in _requests(ids):
        if method != "GET":
            continue
        response = await client.request(method, path, headers=key_for(1))
        assert response.status_code == 200, (path, response.text)


async def test_booking_with_another_tenants_wedding_is_refused(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    mine = await _owned_ids(db, tenant_id=2)
    theirs = await _owned_ids(db, tenant_id=1)
    response = await client.post(
        f"/venues/{mine['venue']}/bookings",
        json={"day": "2031-02-01", "wedding_id": theirs["wedding"]},
        headers=key_for(2),
    )
    assert response.status_code == 404


async def test_search_returns_only_own_suppliers(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    for tenant in (1, 2):
        response = await client.get(
            "/suppliers/search", params={"page_size": 100}, headers=key_for(tenant)
        )
        assert response.status_code == 200
        ids = [item["id"] for item in response.json()["items"]]
        assert ids
        owners = await db.fetch("SELECT DISTINCT tenant_id FROM suppliers WHERE id = ANY($1)", ids)
        assert [r["tenant_id"] for r in owners] == [tenant]


async def test_import_status_is_private(client: httpx.AsyncClient) -> None:
    body = b"name,category,region,lat,lon,price_band\nSolo,florist,london,51.5,-0.1,2\n"
    created = await client.post(
        "/imports/suppliers",
        content=body,
        headers={**key_for(1), "Content-Type": "text/csv"},
    )
    assert created.status_code == 201
    import_id = created.json()["id"]
    assert (await client.get(f"/imports/{import_id}", headers=key_for(1))).status_code == 200
    assert (await client.get(f"/imports/{import_id}", headers=key_for(2))).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wsk_not_a_real_key"}])
async def test_missing_or_unknown_key_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/suppliers/search", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "ApiKey"
