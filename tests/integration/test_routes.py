"""Behaviour of the reference API's routes on the seeded database."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from tests.conftest import key_for

pytestmark = pytest.mark.integration
KEY = key_for(1)


async def _wedding(db: asyncpg.Connection) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT w.id, array_agg(ws.supplier_id) AS vendors FROM weddings w"
        " JOIN wedding_suppliers ws ON ws.wedding_id = w.id WHERE w.tenant_id = 1"
        " GROUP BY w.id ORDER BY w.id DESC LIMIT 1"
    )
    assert row is not None
    return row


async def test_timeline_is_ordered(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    wedding = await _wedding(db)
    response = await client.get(f"/weddings/{wedding['id']}/timeline", headers=KEY)
    assert response.status_code == 200
    items = response.json()["items"]
    assert 10 <= len(items) <= 30
    starts = [item["starts_at"] for item in items]
    assert starts == sorted(starts)


async def test_checkin_updates_arrival_status(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    wedding = await _wedding(db)
    supplier = wedding["vendors"][0]
    response = await client.post(
        f"/weddings/{wedding['id']}/checkins",
        json={"supplier_id": supplier, "status": "late", "note": "traffic on the A40"},
        headers=KEY,
    )
    assert response.status_code == 201
    vendors = (await client.get(f"/weddings/{wedding['id']}/vendors", headers=KEY)).json()
    status = {v["supplier_id"]: v["arrival_status"] for v in vendors["vendors"]}
    assert status[supplier] == "late"


async def test_checkin_of_unbooked_supplier_is_404(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    wedding = await _wedding(db)
    unbooked = await db.fetchval(
        "SELECT min(id) FROM suppliers WHERE tenant_id = 1 AND id <> ALL($1)", wedding["vendors"]
    )
    response = await client.post(
        f"/weddings/{wedding['id']}/checkins", json={"supplier_id": unbooked}, headers=KEY
    )
    assert response.status_code == 404


async def test_message_is_stored(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    wedding = await _wedding(db)
    response = await client.post(
        f"/weddings/{wedding['id']}/messages",
        json={"sender": "florist", "body": "Arch is up"},
        headers=KEY,
    )
    assert response.status_code == 201
    stored = await db.fetchval("SELECT body FROM messages WHERE id = $1", response.json()["id"])
    assert stored == "Arch is up"


async def test_booking_conflict_is_409(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    venue = await db.fetchval("SELECT min(id) FROM venues WHERE tenant_id = 1")
    first = await client.post(f"/venues/{venue}/bookings", json={"day": "2032-07-03"}, headers=KEY)
    assert first.status_code == 201
    second = await client.post(f"/venues/{venue}/bookings", json={"day": "2032-07-03"}, headers=KEY)
    assert second.status_code == 409
    assert "2032-07-03" in second.json()["detail"]
    availability = await client.get(
        f"/venues/{venue}/availability",
        params={"from": "2032-07-02", "to": "2032-07-04"},
        headers=KEY,
    )
    assert [d["available"] for d in availability.json()["days"]] == [True, False, True]


async def test_concurrent_bookings_of_one_day_give_one_winner(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    venue = await db.fetchval("SELECT max(id) FROM venues WHERE tenant_id = 1")
    responses = await asyncio.gather(
        *(
            client.post(f"/venues/{venue}/bookings", json={"day": "2033-05-07"}, headers=KEY)
            for _ in range(6)
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409, 409]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-06-10", "to": "2026-06-01"},
        {"from": "2026-01-01", "to": "2027-06-01"},
        {"from": "2026-01-01"},
    ],
)
async def test_bad_availability_range_is_422(
    client: httpx.AsyncClient, db: asyncpg.Connection, params: dict[str, str]
) -> None:
    venue = await db.fetchval("SELECT min(id) FROM venues WHERE tenant_id = 1")
    response = await client.get(f"/venues/{venue}/availability", params=params, headers=KEY)
    assert response.status_code == 422


async def test_search_filters_and_pages(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    params: dict[str, str | int | float] = {
        "category": "photographer",
        "price_max": 3,
        "page_size": 5,
    }
    page1 = (await client.get("/suppliers/search", params=params, headers=KEY)).json()
    page2 = (
        await client.get("/suppliers/search", params={**params, "page": 2}, headers=KEY)
    ).json()
    assert page1["items"]
    assert page1["has_more"]
    assert not {i["id"] for i in page1["items"]} & {i["id"] for i in page2["items"]}
    for item in page1["items"] + page2["items"]:
        assert item["category"] == "photographer"
        assert item["price_band"] <= 3


async def test_distance_search_orders_by_distance(client: httpx.AsyncClient) -> None:
    params = {"lat": 51.507, "lon": -0.128, "radius_km": 60, "page_size": 50}
    response = await client.get("/suppliers/search", params=params, headers=KEY)
    assert response.status_code == 200
    distances = [item["distance_km"] for item in response.json()["items"]]
    assert distances
    assert distances == sorted(distances)
    assert all(d <= 60 for d in distances)


async def test_date_free_excludes_booked_suppliers(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    booked = await db.fetchrow(
        "SELECT w.wedding_date, ws.supplier_id, s.category FROM wedding_suppliers ws"
        " JOIN weddings w ON w.id = ws.wedding_id JOIN suppliers s ON s.id = ws.supplier_id"
        " WHERE w.tenant_id = 1 AND w.status <> 'cancelled' LIMIT 1"
    )
    assert booked is not None
    ids: set[int] = set()
    page = 1
    while True:
        params = {
            "category": booked["category"],
            "date_free": booked["wedding_date"].isoformat(),
            "page": page,
            "page_size": 100,
        }
        body = (await client.get("/suppliers/search", params=params, headers=KEY)).json()
        ids |= {item["id"] for item in body["items"]}
        if not body["has_more"]:
            break
        page += 1
    assert booked["supplier_id"] not in ids


async def test_geo_arguments_must_come_together(client: httpx.AsyncClient) -> None:
    response = await client.get("/suppliers/search", params={"lat": 51.5}, headers=KEY)
    assert response.status_code == 422
    assert "radius_km" in response.json()["detail"]


async def test_nul_in_text_is_422_not_500(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    wedding = await _wedding(db)
    response = await client.post(
        f"/weddings/{wedding['id']}/messages", json={"sender": "a\u0000b", "body": "x"}, headers=KEY
    )
    assert response.status_code == 422


async def test_rate_limit_answers_429_with_retry_after(seeded_dsn: str) -> None:
    from tests.conftest import api_settings, running
    from wedsync_api.app import create_app

    app = create_app(api_settings(rate_limit="3/minute"), dsn=seeded_dsn)
    async with running(app) as limited:
        statuses = [
            (await limited.get("/suppliers/search", headers=KEY)).status_code for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        blocked = await limited.get("/suppliers/search", headers=KEY)
        assert int(blocked.headers["retry-after"]) >= 1
        # The limit is per key: another tenant is unaffected.
        assert (await limited.get("/suppliers/search", headers=key_for(2))).status_code == 200


async def test_tiny_coordinates_do_not_underflow_into_a_500(client: httpx.AsyncClient) -> None:
    # Found by schemathesis in CI: 1e-300 made PostgreSQL's float8 maths raise.
    params = {"lat": 1e-300, "lon": -1e-300, "radius_km": 5, "min_rating": 1e-300}
    response = await client.get("/suppliers/search", params=params, headers=KEY)
    assert response.status_code == 200
    tiny_radius = await client.get(
        "/suppliers/search", params={"lat": 51.5, "lon": 0.1, "radius_km": 1e-300}, headers=KEY
    )
    assert tiny_radius.status_code == 422
