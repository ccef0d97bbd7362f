"""The reference API on the library's pipeline and its `Services`: a cache hit never
touches the pool, connections are taken on the first statement, the query cache's hit
ratio is reported, and a startup that fails half-way releases what it started."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.conftest import api_settings, key_for, running
from tests.integration.test_monitoring_api import AUTH, perf
from wedsync_api.app import create_app, services_of
from wedsync_perf.caching import Cache, MemoryBackend
from wedsync_perf.caching.policy import CachePolicy

pytestmark = pytest.mark.integration
SENT = ("etag", "cache-control", "vary", "content-type", "content-length")


def acquired(app: object) -> int:
    return sum(services_of(app).pool.stats.acquired.values())  # type: ignore[arg-type]


async def test_a_hit_answers_like_the_route_without_a_database_connection(
    seeded_dsn: str, db: asyncpg.Connection
) -> None:
    wedding = await db.fetchval("SELECT min(id) FROM weddings WHERE tenant_id = 1")
    supplier = await db.fetchval("SELECT min(id) FROM suppliers WHERE tenant_id = 1")
    app = create_app(api_settings(), dsn=seeded_dsn, perf=perf())
    async with running(app) as client:
        for path in (f"/weddings/{wedding}/timeline", f"/weddings/{wedding}/vendors",
                     f"/weddings/{wedding}", f"/suppliers/{supplier}"):  # fmt: skip
            by_route = await client.get(path, headers=key_for(1))  # a miss: the route loads
            before = acquired(app)
            by_cache = await client.get(path, headers=key_for(1))
            assert acquired(app) == before, path  # the hit never touched the pool
            assert by_cache.status_code == by_route.status_code == 200
            assert by_cache.content == by_route.content
            assert [by_cache.headers.get(h) for h in SENT] == [
                by_route.headers.get(h) for h in SENT
            ]
            etag = by_route.headers["etag"]
            revalidated = await client.get(path, headers={**key_for(1), "If-None-Match": etag})
            assert revalidated.status_code == 304
            assert acquired(app) == before
        text = (await client.get("/metrics", headers=AUTH)).text
    timeline = 'method="GET",priority="critical",route="/weddings/{wedding_id}/timeline"'
    assert f'wedsync_http_requests_total{{{timeline},status_class="2xx"}} 2.0' in text
    assert f'wedsync_http_requests_total{{{timeline},status_class="3xx"}} 1.0' in text


async def test_connections_are_taken_on_the_first_statement(seeded_dsn: str) -> None:
    app = create_app(api_settings(), dsn=seeded_dsn)
    async with running(app) as client:
        backwards = {"from": "2026-06-30", "to": "2026-06-01"}
        await client.get("/venues/1/availability", params=backwards, headers=key_for(1))
        before = acquired(app)  # the key is known now: authentication needs no query
        # The handler refuses this range before it runs a statement: no connection.
        refused = await client.get("/venues/1/availability", params=backwards,
                                   headers=key_for(1))  # fmt: skip
        assert refused.status_code == 422
        # A body the importer rejects is read and parsed with no connection held.
        rejected = await client.post(
            "/imports/suppliers", content=b"name,category\nx,florist\n",
            headers={**key_for(1), "Content-Type": "text/csv"},
        )  # fmt: skip
        assert rejected.status_code == 422
        assert acquired(app) == before
        found = await client.get(
            "/venues/1/availability", params={"from": "2026-06-01", "to": "2026-06-02"},
            headers=key_for(1),
        )  # fmt: skip
        assert found.status_code in (200, 404)
        assert acquired(app) == before + 1  # one connection for both statements


async def test_the_query_cache_serves_search_and_reports_its_hit_ratio(seeded_dsn: str) -> None:
    app = create_app(api_settings(), dsn=seeded_dsn, perf=perf())
    async with running(app) as client:
        search = {"category": "florist", "region": "london"}
        first = await client.get("/suppliers/search", params=search, headers=key_for(1))
        again = await client.get("/suppliers/search", params=search, headers=key_for(1))
        assert first.json() == again.json()
        stats = (await client.get("/perf/stats", headers=AUTH)).json()
    figures = stats["query_cache"]
    assert (figures["hits"], figures["misses"]) == (1, 1)
    assert figures["hit_ratio"] == 0.5
    # The query tracker labels by the route table's template (prefixes included).
    assert "/suppliers/search" in stats["queries"]["routes"]


async def test_the_layer_off_serves_the_same_answers_uncached(seeded_dsn: str) -> None:
    on = create_app(api_settings(), dsn=seeded_dsn)
    off = create_app(api_settings(layer="off"), dsn=seeded_dsn)
    paths = ["/suppliers/search?category=band", "/weddings/1/timeline", "/suppliers/1"]
    async with running(on) as client_on, running(off) as client_off:
        for path in paths:
            with_layer = await client_on.get(path, headers=key_for(1))
            without = await client_off.get(path, headers=key_for(1))
            assert (with_layer.status_code, with_layer.content) == (
                without.status_code, without.content
            ), path  # fmt: skip
            assert "etag" not in without.headers
    assert services_of(off).responses is None
    assert services_of(off).cache.stats.by_class == {}


class _CacheThatFailsToStart(Cache):
    async def start(self) -> None:
        raise RuntimeError("the cache could not start")


async def test_a_failed_startup_releases_what_it_started(seeded_dsn: str) -> None:
    cache = _CacheThatFailsToStart(
        MemoryBackend(), secret=b"0123456789abcdef", policy=CachePolicy()
    )
    app = create_app(api_settings(), dsn=seeded_dsn, cache=cache)
    services = services_of(app)
    running_before = set(asyncio.all_tasks())
    with pytest.raises(RuntimeError, match="could not start"):
        async with running(app):
            pass
    assert services.pool.closed  # started before the cache, released by the exit stack
    await asyncio.sleep(0)  # let cancelled background tasks finish their last turn
    started = set(asyncio.all_tasks()) - running_before
    left = [t.get_name() for t in started if t.get_name().startswith("wedsync-perf")]
    assert left == []  # the monitor's alert loop and the admission watcher are stopped too
