"""The reference API on the cache: hot reads served from it, every write route
invalidating what it changed, tenants apart, rate limits still counted."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
import redis.asyncio as redis_asyncio

from tests.conftest import api_settings, key_for, running
from wedsync_api.app import create_app, services_of

pytestmark = pytest.mark.integration


async def _wedding_of(db: asyncpg.Connection, tenant: int) -> tuple[int, list[int]]:
    row = await db.fetchrow(
        "SELECT w.id, array_agg(ws.supplier_id) AS vendors FROM weddings w"
        " JOIN wedding_suppliers ws ON ws.wedding_id = w.id WHERE w.tenant_id = $1"
        " GROUP BY w.id ORDER BY w.id LIMIT 1 OFFSET 3",
        tenant,
    )
    assert row is not None
    return row["id"], list(row["vendors"])


async def test_hot_reads_come_from_the_cache(seeded_dsn: str, db: asyncpg.Connection) -> None:
    wedding, _ = await _wedding_of(db, 1)
    app = create_app(api_settings(), dsn=seeded_dsn)
    async with running(app) as client:
        paths = [
            f"/weddings/{wedding}/timeline",
            f"/weddings/{wedding}/vendors",
            f"/weddings/{wedding}",
            "/suppliers/search?category=florist",
            "/venues/1/availability?from=2026-06-01&to=2026-06-30",
        ]
        first = [await client.get(p, headers=key_for(1)) for p in paths]
        second = [await client.get(p, headers=key_for(1)) for p in paths]
        stats = services_of(app).cache.stats
    assert [r.json() for r in first] == [r.json() for r in second]
    for data_class in ("wedding_timeline", "wedding_vendors", "wedding", "supplier_search"):
        counters = stats.of(data_class)
        assert counters.loader_calls == 1, data_class
        assert counters.hits_local + counters.hits_backend == 1, data_class


async def test_write_routes_invalidate_what_they_change(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    wedding, vendors = await _wedding_of(db, 1)
    before = (await client.get(f"/weddings/{wedding}/vendors", headers=key_for(1))).json()
    assert before["vendors"]
    checkin = await client.post(
        f"/weddings/{wedding}/checkins",
        json={"supplier_id": vendors[0], "status": "no_show"},
        headers=key_for(1),
    )
    assert checkin.status_code == 201
    after = (await client.get(f"/weddings/{wedding}/vendors", headers=key_for(1))).json()
    status = {v["supplier_id"]: v["arrival_status"] for v in after["vendors"]}
    assert status[vendors[0]] == "no_show"

    search = {"region": "wales", "category": "band", "page_size": 100}
    listed = (await client.get("/suppliers/search", params=search, headers=key_for(1))).json()
    body = b"name,category,region,lat,lon,price_band\nFresh Band,band,wales,51.5,-3.2,2\n"
    imported = await client.post(
        "/imports/suppliers", content=body, headers={**key_for(1), "Content-Type": "text/csv"}
    )
    assert imported.status_code == 201
    relisted = (await client.get("/suppliers/search", params=search, headers=key_for(1))).json()
    names = {i["name"] for i in relisted["items"]}
    assert "Fresh Band" in names or relisted["has_more"]
    assert relisted != listed


async def test_cached_entries_never_cross_tenants(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    wedding, _ = await _wedding_of(db, 1)
    for path in (f"/weddings/{wedding}/timeline", f"/weddings/{wedding}/vendors"):
        assert (await client.get(path, headers=key_for(1))).status_code == 200
        assert (await client.get(path, headers=key_for(2))).status_code == 404


async def test_cache_hits_still_count_against_the_rate_limit(
    seeded_dsn: str, db: asyncpg.Connection
) -> None:
    wedding, _ = await _wedding_of(db, 1)
    app = create_app(api_settings(rate_limit="3/minute"), dsn=seeded_dsn)
    async with running(app) as client:
        statuses = [
            (await client.get(f"/weddings/{wedding}/timeline", headers=key_for(1))).status_code
            for _ in range(4)
        ]
    assert statuses == [200, 200, 200, 429]


async def test_vendor_contacts_are_sealed_in_redis(
    seeded_dsn: str, redis_url: str, db: asyncpg.Connection
) -> None:
    wedding, vendors = await _wedding_of(db, 2)
    email = await db.fetchval("SELECT email FROM suppliers WHERE id = $1", vendors[0])
    app = create_app(api_settings(redis_url=redis_url), dsn=seeded_dsn)
    async with running(app) as client:
        response = await client.get(f"/weddings/{wedding}/vendors", headers=key_for(2))
        assert email in response.text
    raw = redis_asyncio.Redis.from_url(redis_url)
    try:
        values = [await raw.get(k) async for k in raw.scan_iter(match="wsp:c:*:k:*")]
        assert values
        assert not any(email.encode() in (v or b"") for v in values)
        names = [k async for k in raw.scan_iter(match="wsp:c:*")]
        assert not any(str(wedding).encode() + b":" in k or b"vendors" in k for k in names)
    finally:
        await raw.aclose()


async def test_etag_revalidation_gives_304_and_still_counts_against_the_limit(
    seeded_dsn: str, db: asyncpg.Connection
) -> None:
    wedding, _ = await _wedding_of(db, 1)
    app = create_app(api_settings(rate_limit="3/minute"), dsn=seeded_dsn)
    async with running(app) as client:
        path = f"/weddings/{wedding}/timeline"
        first = await client.get(path, headers=key_for(1))
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "private, no-cache"
        revalidated = await client.get(path, headers={**key_for(1), "If-None-Match": etag})
        assert revalidated.status_code == 304
        assert revalidated.content == b""
        assert (
            await client.get(path, headers={**key_for(1), "If-None-Match": etag})
        ).status_code == 304
        limited = await client.get(path, headers={**key_for(1), "If-None-Match": etag})
        assert limited.status_code == 429
        # Another tenant's ETag check never reaches the cached entry: 404 first.
        other = await client.get(path, headers={**key_for(2), "If-None-Match": etag})
        assert other.status_code == 404


async def test_check_in_keeps_the_timeline_cached(seeded_dsn: str, db: asyncpg.Connection) -> None:
    wedding, vendors = await _wedding_of(db, 2)
    app = create_app(api_settings(), dsn=seeded_dsn)
    async with running(app) as client:
        await client.get(f"/weddings/{wedding}/timeline", headers=key_for(2))
        await client.get(f"/weddings/{wedding}/vendors", headers=key_for(2))
        posted = await client.post(
            f"/weddings/{wedding}/checkins", json={"supplier_id": vendors[-1]}, headers=key_for(2)
        )
        assert posted.status_code == 201
        await client.get(f"/weddings/{wedding}/timeline", headers=key_for(2))
        await client.get(f"/weddings/{wedding}/vendors", headers=key_for(2))
        stats = services_of(app).cache.stats
    assert stats.of("wedding_timeline").loader_calls == 1
    assert stats.of("wedding_vendors").loader_calls == 2
