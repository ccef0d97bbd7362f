"""The pipeline assembled by `install_pipeline` on small FastAPI apps, called over ASGI:
one route match per request, templates right under prefixes, mounts and root_path,
refusals in the bytes FastAPI gives and recorded under their route."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler

from wedsync_perf.caching import Cache, CachePolicy, DataPolicy, MemoryBackend
from wedsync_perf.caching.http import ResponseCache
from wedsync_perf.errors import ConfigError
from wedsync_perf.monitoring.recorder import UNMATCHED_ROUTE, Recorder
from wedsync_perf.monitoring.series import SeriesKey
from wedsync_perf.pipeline import CacheRule, RateLimiter, RouteTable, Tenant
from wedsync_perf.pipeline.assemble import install_pipeline
from wedsync_perf.priorities import CACHE_EXTENSION, PriorityClass, declare
from wedsync_perf.testing import call_asgi

KEYS = {"good": Tenant(1, "k1")}


async def authenticate(key: str) -> Tenant | None:
    return KEYS.get(key)


def app_with_prefixes() -> FastAPI:
    inner = APIRouter(prefix="/weddings")

    @inner.get(
        "/{wedding_id}/timeline",
        openapi_extra=declare(
            PriorityClass.CRITICAL, cache=CacheRule("timeline", ("wedding:{wedding_id}",))
        ),
    )
    async def timeline(wedding_id: int) -> dict[str, int]:
        return {"wedding_id": wedding_id}

    @inner.post("/{wedding_id}/checkins", openapi_extra=declare(PriorityClass.CRITICAL))
    async def checkin(wedding_id: int) -> dict[str, int]:
        return {"wedding_id": wedding_id}

    app = FastAPI()
    app.include_router(inner, prefix="/v1")
    sub = FastAPI()

    @sub.get("/reports/{report_id}", openapi_extra=declare(PriorityClass.BULK))
    async def report(report_id: int) -> dict[str, int]:
        return {"id": report_id}

    app.mount("/admin", sub)

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "pass"}

    return app


def pipeline(app: FastAPI, limit: str = "1000/minute") -> tuple[RouteTable, Recorder]:
    recorder = Recorder()
    policy = CachePolicy({"default": DataPolicy(60), "timeline": DataPolicy(60)})
    cache = Cache(MemoryBackend(), secret=b"0123456789abcdef", policy=policy)
    table = install_pipeline(
        app,
        recorder=recorder,
        authenticate=authenticate,
        limiter=RateLimiter(limit),
        responses=ResponseCache(cache),
        public={"/health/live"},
        internal={"/health/live"},
    )
    return table, recorder


def status_of(sent: list[Any]) -> int:
    return int(next(m["status"] for m in sent if m["type"] == "http.response.start"))


def answer(sent: list[Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], list(start["headers"]), body


async def get(app: Any, path: str, key: str | None = "good", **kwargs: Any) -> list[Any]:
    headers = [(b"x-api-key", key.encode())] if key else []
    return await call_asgi(app, "GET", path, headers=headers, **kwargs)


def test_templates_keep_router_prefixes_and_mount_paths() -> None:
    table = RouteTable.compile(app_with_prefixes().routes)
    found = table.match("GET", "/v1/weddings/7/timeline")
    assert found is not None
    route, params = found
    assert (route.template, route.priority, params) == (
        "/v1/weddings/{wedding_id}/timeline", PriorityClass.CRITICAL, {"wedding_id": "7"},
    )  # fmt: skip
    assert route.cache == CacheRule("timeline", ("wedding:{wedding_id}",))
    mounted = table.match("GET", "/admin/reports/3")
    assert mounted is not None
    assert (mounted[0].template, mounted[0].priority) == ("/admin/reports/{report_id}", "bulk")
    assert table.match("DELETE", "/v1/weddings/7/timeline") is None  # not its method
    assert table.match("GET", "/weddings/7/timeline") is None  # the prefix is part of it


async def test_one_match_per_request_whatever_the_outcome() -> None:
    app = app_with_prefixes()
    table, recorder = pipeline(app, limit="4/minute")
    outcomes = [
        status_of(await get(app, "/v1/weddings/7/timeline")),  # a miss: the route answers
        status_of(await get(app, "/v1/weddings/7/timeline")),  # a hit: the cache answers
        status_of(await get(app, "/v1/weddings/7/timeline", key=None)),  # refused: no key
        status_of(await get(app, "/v1/weddings/7/timeline", key="bad")),  # refused: unknown
        status_of(
            await call_asgi(
                app, "POST", "/v1/weddings/7/checkins", headers=[(b"x-api-key", b"good")]
            )
        ),
        status_of(await get(app, "/admin/reports/3")),
        status_of(await get(app, "/v1/weddings/7/timeline")),  # over the limit of 4
        status_of(await get(app, "/nowhere")),
        status_of(await get(app, "/health/live", key=None)),
    ]
    assert outcomes == [200, 200, 401, 401, 200, 200, 429, 404, 200]
    assert table.matched == len(outcomes)
    totals = recorder.totals()
    timeline = "/v1/weddings/{wedding_id}/timeline"
    assert totals[SeriesKey(timeline, "GET", "2xx", "critical")].count == 2
    assert totals[SeriesKey(timeline, "GET", "2xx", "critical")].cache_hits == 1
    # Refusals made before routing are the route's, in its class: not "__unmatched__".
    assert totals[SeriesKey(timeline, "GET", "4xx", "critical")].count == 3
    assert SeriesKey(UNMATCHED_ROUTE, "GET", "4xx", "standard") in totals
    assert not any(key.route == "/health/live" for key in totals)  # internal: not measured


@pytest.mark.parametrize("root_path", ["/proxy", "/a/b"])
async def test_root_path_is_not_part_of_the_match(root_path: str) -> None:
    app = app_with_prefixes()
    _, recorder = pipeline(app)
    assert status_of(await get(app, "/v1/weddings/7/timeline", root_path=root_path)) == 200
    assert {key.route for key in recorder.totals()} == {"/v1/weddings/{wedding_id}/timeline"}


async def test_refusals_are_byte_for_byte_fastapi_s_own() -> None:
    app = app_with_prefixes()
    pipeline(app, limit="1/minute")
    path = "/v1/weddings/7/timeline"
    await get(app, path)
    refusals = {
        "missing": answer(await get(app, path, key=None)),
        "unknown": answer(await get(app, path, key="bad")),
        "limited": answer(await get(app, path)),
    }
    expected = {
        "missing": HTTPException(401, "missing X-API-Key header", {"WWW-Authenticate": "ApiKey"}),
        "unknown": HTTPException(401, "unknown or revoked API key", {"WWW-Authenticate": "ApiKey"}),
        "limited": HTTPException(
            429, "rate limit of 1 per 1 minute per API key exceeded", {"Retry-After": "60"}
        ),
    }
    request = Request({"type": "http", "method": "GET", "path": path, "headers": []})
    for name, exc in expected.items():
        response = await http_exception_handler(request, exc)
        status, headers, body = refusals[name]
        if name == "limited":  # the window's remaining seconds: whatever they are now
            headers = [(k, b"60" if k == b"retry-after" else v) for k, v in headers]
        assert (status, headers, body) == (response.status_code, response.raw_headers,
                                           response.body), name  # fmt: skip


def test_a_malformed_cache_declaration_is_refused_at_startup() -> None:
    app = FastAPI()

    @app.get("/x/{x_id}", openapi_extra={CACHE_EXTENSION: {"data_class": "t", "tags": ["y:{y}"]}})
    async def x(x_id: int) -> dict[str, int]:
        return {}

    with pytest.raises(ConfigError, match="names no path parameter"):
        RouteTable.compile(app.routes)


def test_the_response_cache_refuses_to_run_without_authentication() -> None:
    app = app_with_prefixes()
    cache = Cache(MemoryBackend(), secret=b"0123456789abcdef")
    with pytest.raises(ConfigError, match="authenticator"):
        install_pipeline(app, responses=ResponseCache(cache))
