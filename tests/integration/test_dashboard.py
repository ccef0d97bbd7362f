"""The /perf dashboard end to end: a real server, real traffic, headless Chromium
(Debian's, driven by Playwright); the numbers on the page must be the fleet view's.
The screenshot is kept in `.artifacts/` (or ARTIFACTS_DIR)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import key_for, served_api

pytestmark = pytest.mark.integration

TOKEN = "dashboard-test-token"
ROUTE = "GET /weddings/{wedding_id}/timeline"


def chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.fail("Chromium not found: install Debian's chromium (.ci/run does) or set CHROMIUM")


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).parents[2] / ".artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_dashboard_shows_the_fleet_view_live(
    seeded_dsn: str, redis_url: str, artifacts: Path
) -> None:
    env = {"DATABASE_URL": seeded_dsn, "REDIS_URL": redis_url, "WEDSYNC_PERF_METRICS_TOKEN": TOKEN,
           "WEDSYNC_PERF_FLUSH_INTERVAL_S": "1", "WEDSYNC_PERF_FLEET": f"dash{os.getpid()}"}  # fmt: skip
    async with served_api(env) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        assert (await client.get("/perf")).status_code == 401  # credentials first
        assert (await client.get("/perf/events")).status_code == 401
        for i in range(40):
            await client.get(f"/weddings/{i % 7 + 1}/timeline", headers=key_for(1))
            await client.get(f"/suppliers/{i % 5 + 1}", headers=key_for(1))
        async with playwright_browser() as browser:
            context = await browser.new_context(
                http_credentials={"username": "ops", "password": TOKEN},
                viewport={"width": 1300, "height": 1000},
            )
            page = await context.new_page()
            failures: list[str] = []
            page.on("pageerror", lambda e: failures.append(str(e)))
            await page.goto(f"{base}/perf")
            # The fleet view once every process has flushed what it served:
            stats = await fleet_stats(client)
            expected = next(r for r in stats["routes"] if f"{r['method']} {r['route']}" == ROUTE)
            assert expected["count"] == 40
            row = page.locator(f'#routes tr[data-route="{ROUTE}"]')
            await row.locator('[data-field="count"]').filter(has_text="40").wait_for(timeout=30_000)
            p95_text = await row.locator('[data-field="p95_ms"]').inner_text()
            assert p95_text == f"{expected['p95_ms']:.2f}"
            assert await row.locator('[data-field="target_ms"]').inner_text() in ("100", "200")
            assert await page.inner_text("#scope") == "fleet"
            assert await page.inner_text("#regime") == stats["regime"].replace("_", " ")
            objectives = await page.locator("#objectives tbody tr").count()
            assert objectives == len(stats["alerts"]["objectives"])
            await page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
            assert not failures, failures


async def fleet_stats(client: httpx.AsyncClient) -> dict:  # type: ignore[type-arg]
    """/perf/stats (fleet scope) once the route's 40 requests are all in it."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with asyncio.timeout(30):
        while True:
            stats = (await client.get("/perf/stats", headers=auth)).json()
            counts = [r["count"] for r in stats["routes"] if f"{r['method']} {r['route']}" == ROUTE]
            if stats["scope"] == "fleet" and counts == [40]:
                return stats  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)


def playwright_browser():  # type: ignore[no-untyped-def]
    from contextlib import asynccontextmanager

    from playwright.async_api import async_playwright

    @asynccontextmanager
    async def launch():  # type: ignore[no-untyped-def]
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=chromium(),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )  # fmt: skip
            try:
                yield browser
            finally:
                await browser.close()

    return launch()
