"""The wedding-day vendor route asks simulated vendor systems (real local HTTP servers)
through the balancer and the fan-out: a broken gateway replica is routed around, a
vendor that never answers is reported as a timeout, the rest answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import api_settings, key_for, running
from tests.integration.test_monitoring_api import AUTH, perf
from wedsync_api.app import create_app
from wedsync_perf.testing import http_upstream

pytestmark = pytest.mark.integration


@pytest.fixture
async def vendor_gateways() -> AsyncIterator[tuple[list[str], list[str]]]:
    never = asyncio.Event()
    broken_hits: list[str] = []

    def handler(broken: bool):  # type: ignore[no-untyped-def]
        async def respond(method: str, path: str) -> tuple[str, bytes]:
            supplier = int(path.rsplit("/", 1)[1])
            if broken:
                broken_hits.append(path)
                return "500 Internal Server Error", b"{}"
            if supplier % 3 == 0:
                await never.wait()  # this vendor's own system hangs
            return "200 OK", json.dumps({"supplier": supplier, "eta": "on site"}).encode()

        return respond

    async with AsyncExitStack() as servers:
        urls = [await servers.enter_async_context(http_upstream(handler(i == 0))) for i in range(3)]
        yield urls, broken_hits
        never.set()


async def test_live_vendor_status_is_partial_not_failed(
    seeded_dsn: str, vendor_gateways: tuple[list[str], list[str]]
) -> None:
    urls, broken_hits = vendor_gateways
    conn = await asyncpg.connect(seeded_dsn)
    wedding = await conn.fetchval(
        "SELECT wedding_id FROM wedding_suppliers WHERE tenant_id = 1 GROUP BY wedding_id"
        " HAVING count(*) FILTER (WHERE supplier_id % 3 = 0) > 0"
        " AND count(*) FILTER (WHERE supplier_id % 3 <> 0) > 0 LIMIT 1"
    )
    await conn.close()
    settings = api_settings(vendor_systems=",".join(urls), vendor_deadline_ms=300)
    async with running(create_app(settings, dsn=seeded_dsn, perf=perf())) as client:
        answer = await client.get(f"/weddings/{wedding}/vendors/live", headers=key_for(1))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["complete"] is False
        statuses = {int(k): v["status"] for k, v in body["vendors"].items()}
        assert all(s == "timeout" for k, s in statuses.items() if k % 3 == 0)
        assert all(
            s == "ok" for k, s in statuses.items() if k % 3 != 0
        )  # the broken replica was retried
        assert "127.0.0.1" not in answer.text
        for _ in range(3):  # enough calls for the broken replica's five straight 500s
            await client.get(f"/weddings/{wedding}/vendors/live", headers=key_for(1))
        exposition = (await client.get("/metrics", headers=AUTH)).text
    samples = {
        (s.name, s.labels.get("backend", "")): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name.startswith("wedsync_upstream")
    }
    # What the balancer did is on /metrics: every 500 from the broken replica was
    # retried elsewhere, and it now carries the failure penalty (1 s) in its cost.
    assert samples[("wedsync_upstream_requests_total", "")] >= 4
    assert samples[("wedsync_upstream_retries_total", "")] == len(broken_hits)
    for i, url in enumerate(urls):
        latency = samples[("wedsync_upstream_backend_latency_ewma_seconds", url[7:])]
        assert (latency >= 1.0) == (i == 0 and bool(broken_hits)), (i, latency)
        assert samples[("wedsync_upstream_backend_healthy", url[7:])] == 1.0
    off = create_app(api_settings(), dsn=seeded_dsn)
    async with running(off) as client:
        assert (
            await client.get(f"/weddings/{wedding}/vendors/live", headers=key_for(1))
        ).status_code == 404
