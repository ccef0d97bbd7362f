"""The reference API's cached responses on a real Redis, tampered with: a cached answer
whose status, headers or body were changed is never replayed — the route answers from
the database, the rejection is counted, and the entry is replaced. Personal fields
never sit in Redis in clear. The app runs under a Redis prefix of this module's own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as redis_asyncio

from tests.conftest import api_settings, key_for, running
from wedsync_api.app import create_app, services_of
from wedsync_perf.caching import Cache
from wedsync_perf.settings import PerfSettings, load_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(
    seeded_dsn: str, redis_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Cache, redis_asyncio.Redis]]:
    # A prefix of this test's own; a generous Redis timeout, so that a busy machine never
    # turns a rejection into a timed-out miss.
    perf = load_settings(
        PerfSettings, redis_prefix="t" + uuid.uuid4().hex[:10], cache_timeout_ms=5000
    )
    app = create_app(api_settings(redis_url=redis_url), dsn=seeded_dsn, perf=perf)
    raw = redis_asyncio.Redis.from_url(redis_url)
    async with running(app) as client:
        yield client, services_of(app).cache, raw
    await raw.aclose()


async def _wedding(db: asyncpg.Connection) -> int:
    wedding: int = await db.fetchval(
        "SELECT min(id) FROM weddings WHERE tenant_id = 1 AND status <> 'cancelled'"
    )
    return wedding


async def _timeline(client: httpx.AsyncClient, db: asyncpg.Connection) -> tuple[str, bytes]:
    """A wedding's timeline path, and its true answer (cached by this request)."""
    path = f"/weddings/{await _wedding(db)}/timeline"
    truth = await client.get(path, headers=key_for(1))
    assert truth.status_code == 200
    return path, truth.content


def _entry(cache: Cache, path: str) -> str:
    return cache.names.entry(1, f"http:{path}\x1f")  # ResponseCache.key(path, b"")


async def _fresh_get(client: httpx.AsyncClient, cache: Cache, path: str) -> httpx.Response:
    if cache.local is not None:
        cache.local.clear()  # this process's L1 must not answer: read Redis
    return await client.get(path, headers=key_for(1))


async def test_a_tampered_cached_response_is_never_replayed(
    api: tuple[httpx.AsyncClient, Cache, redis_asyncio.Redis], db: asyncpg.Connection
) -> None:
    client, cache, raw = api
    path, truth = await _timeline(client, db)
    entry = _entry(cache, path)
    blob = await raw.get(entry)
    assert blob is not None
    assert b'"status":200' in blob
    tampered = [
        blob.replace(b'"status":200', b'"status":302', 1),
        blob.replace(b'["content-type",', b'["location","https://evil.example/"],["content-type",'),
    ]
    for number, forged in enumerate(tampered, 1):
        assert forged != blob
        await raw.set(entry, forged)
        answer = await _fresh_get(client, cache, path)
        assert (answer.status_code, answer.content) == (200, truth)
        assert "location" not in answer.headers
        assert cache.stats.of("wedding_timeline").rejected == {"forged": number}
        assert await raw.get(entry) not in (None, forged)  # replaced by the true answer


async def test_an_authentic_entry_of_the_wrong_shape_is_a_miss_not_a_500(
    api: tuple[httpx.AsyncClient, Cache, redis_asyncio.Redis], db: asyncpg.Connection
) -> None:
    client, cache, _ = api
    path, truth = await _timeline(client, db)
    good = await cache.get(f"http:{path}\x1f", tenant=1, data_class="wedding_timeline")
    assert isinstance(good, dict)

    def variant(**changes: Any) -> dict[str, Any]:
        return {**good, **changes}

    wrong: list[Any] = [
        [1, 2, 3],
        variant(headers="content-type: text/plain"),  # once a TypeError, a lasting 500
        variant(status=500),
        variant(status="200"),
        variant(headers=[*good["headers"], ["x-evil", "a\r\nset-cookie: s=1"]]),
        variant(headers=[*good["headers"], ["set-cookie", "session=attacker"]]),
        variant(body='{"items": [{"title": "Ceremony moved to 06:00"}]}'),  # not its ETag
        variant(body64="!!not base64"),
    ]
    for number, value in enumerate(wrong, 1):
        await cache.set(f"http:{path}\x1f", value, tenant=1, data_class="wedding_timeline")
        answer = await _fresh_get(client, cache, path)
        assert (answer.status_code, answer.content) == (200, truth), value
        assert "set-cookie" not in answer.headers
        assert "x-evil" not in answer.headers
        assert cache.stats.of("wedding_timeline").rejected == {"shape": number}
    again = await _fresh_get(client, cache, path)
    assert again.content == truth
    assert cache.stats.of("wedding_timeline").rejected == {"shape": len(wrong)}


async def test_contacts_and_couples_names_are_sealed_in_redis(
    api: tuple[httpx.AsyncClient, Cache, redis_asyncio.Redis], db: asyncpg.Connection
) -> None:
    client, cache, raw = api
    wedding = await _wedding(db)
    couple = await db.fetchrow(
        "SELECT c.partner_a, c.partner_b FROM weddings w JOIN couples c ON c.id = w.couple_id"
        " WHERE w.id = $1",
        wedding,
    )
    supplier = await db.fetchrow(
        "SELECT id, email, phone FROM suppliers WHERE tenant_id = 1 AND email IS NOT NULL"
        " AND phone IS NOT NULL ORDER BY id LIMIT 1"
    )
    assert couple is not None
    assert supplier is not None
    for path in (f"/weddings/{wedding}", f"/suppliers/{supplier['id']}"):
        assert (await client.get(path, headers=key_for(1))).status_code == 200
        blob = await raw.get(_entry(cache, path))
        assert blob is not None, path  # cached (sealed: the tests run with a keyring)
        for personal in (couple["partner_a"], couple["partner_b"], supplier["email"],
                         supplier["phone"]):  # fmt: skip
            assert personal.encode() not in blob, path
