"""Cached reads served before FastAPI: a hit answers exactly as the route would, takes
no database connection, and is still authenticated, rate-limited, tenant-scoped and
measured under its route."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import api_settings, key_for, running
from tests.integration.test_monitoring_api import AUTH, perf
from wedsync_api.app import create_app
from wedsync_api.fastpath import CACHED_GETS, CachedReadFastPath

pytestmark = pytest.mark.integration
SENT = ("etag", "cache-control", "vary", "content-type", "content-length")


def acquired(app: object) -> int:
    return sum(app.state.pool.stats.acquired.values())  # type: ignore[attr-defined]


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
            by_fast_path = await client.get(path, headers=key_for(1))
            assert acquired(app) == before, path  # the hit never touched the pool
            assert by_fast_path.status_code == by_route.status_code == 200
            assert by_fast_path.content == by_route.content
            assert [by_fast_path.headers.get(h) for h in SENT] == [
                by_route.headers.get(h) for h in SENT
            ]
            etag = by_route.headers["etag"]
            revalidated = await client.get(path, headers={**key_for(1), "If-None-Match": etag})
            assert revalidated.status_code == 304
            assert acquired(app) == before
        text = (await client.get("/metrics", headers=AUTH)).text
    # Measured like the route's own answers: template, priority, 2xx and 3xx.
    timeline = 'method="GET",priority="critical",route="/weddings/{wedding_id}/timeline"'
    assert f'wedsync_http_requests_total{{{timeline},status_class="2xx"}} 2.0' in text
    assert f'wedsync_http_requests_total{{{timeline},status_class="3xx"}} 1.0' in text


async def test_refusals_are_the_route_s_own(seeded_dsn: str, db: asyncpg.Connection) -> None:
    wedding = await db.fetchval("SELECT min(id) FROM weddings WHERE tenant_id = 1")
    path = f"/weddings/{wedding}/timeline"
    app = create_app(api_settings(rate_limit="3/minute"), dsn=seeded_dsn)
    async with running(app) as client:
        assert (await client.get(path, headers=key_for(1))).status_code == 200  # cached now
        unknown = await client.get(path, headers={"X-API-Key": "not-a-key"})
        missing = await client.get(path)
        other_tenant = await client.get(path, headers=key_for(2))  # its own key, not its wedding
        statuses = [(await client.get(path, headers=key_for(1))).status_code for _ in range(3)]
        uncached = await client.get("/weddings/999999/timeline", headers={"X-API-Key": "not-a-key"})
    assert (unknown.status_code, unknown.json()) == (401, {"detail": "unknown or revoked API key"})
    assert unknown.headers["www-authenticate"] == "ApiKey"
    assert (unknown.status_code, unknown.content) == (uncached.status_code, uncached.content)
    assert missing.status_code == 401
    assert other_tenant.status_code == 404  # a miss for tenant 2: the route answers
    assert statuses == [200, 200, 429]  # hits count against the key's limit


def test_every_cached_read_is_a_get_route_of_the_app() -> None:
    app = create_app(api_settings())
    table = CachedReadFastPath(app)._build(app.routes)
    assert [route.path_format for _, _, route in table] == list(CACHED_GETS)
    assert all("GET" in route.methods for _, _, route in table)
