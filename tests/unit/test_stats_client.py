"""The /perf/stats client against an httpx mock transport: what it sends, and the one
error every caller reports when the summary cannot be read."""

from __future__ import annotations

import httpx
import pytest

from wedsync_perf.monitoring.client import StatsUnavailable, fetch_stats, fetch_stats_async

SUMMARY = {"routes": [], "classes": []}


def _api(request: httpx.Request) -> httpx.Response:
    if request.headers.get("authorization") != "Bearer right":
        return httpx.Response(401)
    return httpx.Response(200, json={**SUMMARY, "window": request.url.params.get("window")})


def test_sends_the_token_and_the_window() -> None:
    with httpx.Client(base_url="http://api", transport=httpx.MockTransport(_api)) as client:
        assert fetch_stats(client, "right", 30)["window"] == "30"
        assert fetch_stats(client, "right")["window"] is None  # the server's default


def test_a_refused_token_says_so() -> None:
    client = httpx.Client(base_url="http://api", transport=httpx.MockTransport(_api))
    with client, pytest.raises(StatsUnavailable, match=r"refused the token \(401\)"):
        fetch_stats(client, "wrong")


async def test_an_unreachable_api_is_named() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    transport = httpx.MockTransport(down)
    async with httpx.AsyncClient(base_url="http://api:8000", transport=transport) as client:
        with pytest.raises(StatsUnavailable, match=r"cannot reach http://api:8000/perf/stats"):
            await fetch_stats_async(client, "right", 10)


async def test_another_status_is_reported_with_the_address() -> None:
    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    transport = httpx.MockTransport(failing)
    async with httpx.AsyncClient(base_url="http://api", transport=transport) as client:
        with pytest.raises(StatsUnavailable, match=r"http://api/perf/stats answered 503"):
            await fetch_stats_async(client, "right")
