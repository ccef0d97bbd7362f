"""The reference API instrumented: templates in the exposition, the endpoints' guard,
promtool's verdict, and no personal data anywhere in what monitoring exposes."""

from __future__ import annotations

import random
import subprocess
import uuid

import pytest
from pydantic import SecretStr

from tests.conftest import api_settings, key_for, running
from wedsync_api.app import create_app, services_of
from wedsync_perf.settings import PerfSettings

pytestmark = pytest.mark.integration
TOKEN = "test-metrics-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def perf(**overrides: object) -> PerfSettings:
    values: dict[str, object] = {"metrics_token": SecretStr(TOKEN), "fleet": uuid.uuid4().hex}
    values.update(overrides)
    return PerfSettings(**values)


async def test_routes_are_exported_by_template_with_priority(seeded_dsn: str) -> None:
    app = create_app(api_settings(), dsn=seeded_dsn, perf=perf())
    async with running(app) as client:
        wedding = 1
        for _ in range(3):
            await client.get(f"/weddings/{wedding}/timeline", headers=key_for(1))
        await client.get("/suppliers/search", params={"category": "florist"}, headers=key_for(1))
        text = (await client.get("/metrics", headers=AUTH)).text
    assert (
        'wedsync_http_requests_total{method="GET",priority="critical",'
        'route="/weddings/{wedding_id}/timeline",status_class="2xx"} 3.0' in text
    )
    assert 'route="/suppliers/search"' in text
    assert "/health/" not in text  # probes are not measured


async def test_endpoints_refuse_without_the_token(seeded_dsn: str) -> None:
    app = create_app(api_settings(), dsn=seeded_dsn, perf=perf())
    async with running(app) as client:
        for path in ("/metrics", "/perf/stats"):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                response = await client.get(path, headers=headers)
                assert response.status_code == 401, (path, headers)
                assert response.content == b""
                assert response.headers["www-authenticate"] == "Bearer"
            assert (await client.get(path, headers=AUTH)).status_code == 200


async def test_endpoints_are_off_without_a_configured_token(seeded_dsn: str) -> None:
    app = create_app(api_settings(), dsn=seeded_dsn, perf=perf(metrics_token=None))
    async with running(app) as client:
        assert (await client.get("/metrics", headers=AUTH)).status_code == 404


async def test_exposition_passes_promtool(seeded_dsn: str, promtool: str) -> None:
    app = create_app(api_settings(), dsn=seeded_dsn, perf=perf())
    async with running(app) as client:
        for path in ("/weddings/1/vendors", "/suppliers/1", "/nope"):
            await client.get(path, headers=key_for(1))
        exposition = (await client.get("/metrics", headers=AUTH)).content
    assert b'wedsync_admission_admitted_total{priority="critical"}' in exposition
    assert b"wedsync_admission_limit " in exposition
    result = subprocess.run(  # noqa: ASYNC221 - the check is the test
        [promtool, "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


async def test_pii_flood_reaches_no_output_and_memory_stays_bounded(seeded_dsn: str) -> None:
    app = create_app(api_settings(), dsn=seeded_dsn, perf=perf(max_series=50))
    rng = random.Random(8)
    secrets: list[str] = []
    async with running(app) as client:
        for i in range(1500):
            email = f"bride{rng.randrange(10**6)}@example.com"
            phone = f"07700 9{rng.randrange(10**5):05d}"
            ident = str(uuid.UUID(int=rng.getrandbits(128)))
            secrets += [email, phone.replace(" ", "%20"), ident]
            path = rng.choice(
                [f"/couples/{email}", f"/weddings/{ident}/timeline", f"/call/{phone}", f"/{i}"]
            )
            await client.get(path, params={"email": email}, headers=key_for(1))
        metrics = (await client.get("/metrics", headers=AUTH)).text
        stats = (await client.get("/perf/stats", headers=AUTH)).text
        series = services_of(app).monitor.recorder.series_count()
    for secret in secrets:
        assert secret not in metrics
        assert secret not in stats
    assert series <= 50
    assert 'route="__unmatched__"' in metrics


async def test_stats_summary_and_bad_window(seeded_dsn: str) -> None:
    app = create_app(api_settings(), dsn=seeded_dsn, perf=perf())
    async with running(app) as client:
        for _ in range(5):
            await client.get("/weddings/2/vendors", headers=key_for(1))
        body = (await client.get("/perf/stats", params={"window": 60}, headers=AUTH)).json()
        bad = await client.get("/perf/stats", params={"window": "soon"}, headers=AUTH)
    assert body["scope"] == "process"
    assert body["regime"] in {"off_season", "season", "wedding_day"}
    [route] = [r for r in body["routes"] if r["route"] == "/weddings/{wedding_id}/vendors"]
    assert route["count"] == 5
    assert route["priority"] == "critical"
    assert set(route["under_ms"]) == {"100", "200"}
    assert bad.status_code == 422
    assert "window" in bad.json()["detail"]


async def test_client_side_and_server_side_agree_on_counts(seeded_dsn: str) -> None:
    app = create_app(api_settings(), dsn=seeded_dsn, perf=perf())
    async with running(app) as client:
        statuses = [
            (await client.get(f"/suppliers/{n}", headers=key_for(1))).status_code
            for n in range(1, 41)
        ]
        body = (await client.get("/perf/stats", headers=AUTH)).json()
    [route] = [r for r in body["routes"] if r["route"] == "/suppliers/{supplier_id}"]
    assert route["count"] == len(statuses)
    assert route["client_errors"] == sum(1 for s in statuses if 400 <= s < 500)


@pytest.mark.parametrize("scope", ["process", "fleet"])
async def test_stats_scope_without_redis_is_process(seeded_dsn: str, scope: str) -> None:
    app = create_app(api_settings(), dsn=seeded_dsn, perf=perf())
    async with running(app) as client:
        body = (await client.get("/perf/stats", params={"scope": scope}, headers=AUTH)).json()
    assert body["scope"] == "process"


async def test_stats_carry_per_route_query_figures(seeded_dsn: str) -> None:
    app = create_app(api_settings(), dsn=seeded_dsn, perf=perf())
    async with running(app) as client:
        for n in range(1, 4):
            await client.get(f"/suppliers/{n}", headers=key_for(1))
        body = (await client.get("/perf/stats", headers=AUTH)).json()
    route = body["queries"]["routes"]["/suppliers/{supplier_id}"]
    assert route["requests"] == 3
    assert route["queries"] >= 1
    assert body["queries"]["n_plus_one"] == []
