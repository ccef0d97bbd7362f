"""The HTTP response cache in the pipeline, on a small FastAPI app: the classifier and
access control in front (as `install_pipeline` puts them), called directly over ASGI."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from wedsync_perf.caching import Cache, CachePolicy, DataPolicy, MemoryBackend
from wedsync_perf.caching.http import ResponseCache, etag_of, matches
from wedsync_perf.caching.stored_response import body_of, check_entry, new_entry
from wedsync_perf.errors import ConfigError, CorruptData
from wedsync_perf.pipeline import CacheRule, Tenant, tenant_of
from wedsync_perf.pipeline.assemble import install_pipeline
from wedsync_perf.priorities import PriorityClass, declare
from wedsync_perf.testing import call_asgi

calls: dict[str, int] = {}
CACHED = declare(PriorityClass.STANDARD, cache=CacheRule("http_response"))
BY_ID = declare(PriorityClass.STANDARD, cache=CacheRule("http_response", ("item:{item_id}",)))
TENANTS = {"a": Tenant(1, "ka"), "b": Tenant(2, "kb")}


def count(name: str) -> int:
    calls[name] = calls.get(name, 0) + 1
    return calls[name]


def build(release: asyncio.Event | None = None) -> Any:
    calls.clear()
    app = FastAPI()

    @app.api_route("/profile", methods=["GET", "HEAD"], openapi_extra=CACHED)
    async def profile(request: Request) -> Response:
        tenant = tenant_of(request.scope)
        return JSONResponse({"tenant": tenant.id if tenant else None, "n": count("profile")})

    @app.get("/open", openapi_extra=CACHED)
    async def open_page() -> Response:
        return PlainTextResponse(str(count("open")))

    @app.get("/items/{item_id}", openapi_extra=BY_ID)
    async def item(item_id: int) -> Response:
        if release is not None:
            await release.wait()
        return PlainTextResponse(f"{item_id}:{count('item')}")

    @app.get("/cookie", openapi_extra=CACHED)
    async def with_cookie() -> Response:
        count("cookie")
        response = PlainTextResponse("x")
        response.set_cookie("session", "abc")
        return response

    @app.get("/nostore", openapi_extra=CACHED)
    async def no_store() -> Response:
        count("no_store")
        return PlainTextResponse("x", headers={"Cache-Control": "no-store"})

    @app.get("/big", openapi_extra=CACHED)
    async def big() -> Response:
        return PlainTextResponse("y" * 5000)

    policy = CachePolicy({"default": DataPolicy(60), "http_response": DataPolicy(60)})
    cache = Cache(MemoryBackend(), secret=b"0123456789abcdef", policy=policy)

    async def authenticate(key: str) -> Tenant | None:
        return TENANTS.get(key)

    install_pipeline(
        app,
        authenticate=authenticate,
        responses=ResponseCache(cache, max_body_bytes=1000),
        public={"/open"},
    )
    return app


async def request(app: Any, path: str, tenant: str | None = None, etag: str | None = None,
                  method: str = "GET") -> tuple[int, dict[bytes, bytes], bytes]:  # fmt: skip
    headers = []
    if tenant:
        headers.append((b"x-api-key", tenant.encode()))
    if etag:
        headers.append((b"if-none-match", etag.encode()))

    sent = await _call(app, method, path, headers)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


async def _call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Any:
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        scope["headers"] = [*scope["headers"], *headers]
        await app(scope, receive, send)

    return await call_asgi(wrapped, method, path)


async def test_repeat_gets_are_served_from_cache_per_tenant() -> None:
    app = build()
    status, headers, body = await request(app, "/profile", tenant="a")
    assert status == 200
    assert headers[b"etag"] == etag_of(body).encode()
    assert headers[b"cache-control"] == b"private, no-cache"
    assert headers[b"vary"] == b"X-API-Key"
    assert (await request(app, "/profile", tenant="a"))[2] == body
    assert calls["profile"] == 1
    other = await request(app, "/profile", tenant="b")
    assert b'"tenant":2' in other[2]
    assert calls["profile"] == 2


async def test_if_none_match_gives_304_cached_or_not() -> None:
    app = build()
    _, headers, _ = await request(app, "/profile", tenant="a")
    etag = headers[b"etag"].decode()
    status, again, body = await request(app, "/profile", tenant="a", etag=etag)
    assert status == 304
    assert body == b""
    assert again[b"etag"].decode() == etag
    assert (await request(app, "/profile", tenant="a", etag='"other"'))[0] == 200


async def test_no_tenant_no_cache() -> None:
    app = build()
    assert (await request(app, "/profile"))[0] == 401  # refused before the cache
    for _ in range(3):
        await request(app, "/open")  # public: no tenant, so never cached
    assert calls["open"] == 3
    assert "profile" not in calls


async def test_tags_come_from_canonical_path_parameters_only() -> None:
    app = build()
    for _ in range(2):
        assert (await request(app, "/items/7", tenant="a"))[2] == b"7:1"
    # "007" names item 7 too, but under a tag no invalidation of item:7 would bump.
    assert (await request(app, "/items/007", tenant="a"))[2] == b"7:2"
    assert (await request(app, "/items/007", tenant="a"))[2] == b"7:3"


async def test_concurrent_misses_of_one_key_call_the_app_once() -> None:
    release = asyncio.Event()
    app = build(release)
    waiting = [asyncio.create_task(request(app, "/items/5", tenant="a")) for _ in range(5)]
    for _ in range(5):
        await asyncio.sleep(0)  # every request reaches the cache before the app answers
    release.set()
    bodies = [body for _, _, body in await asyncio.gather(*waiting)]
    assert bodies == [b"5:1"] * 5
    assert calls["item"] == 1


def test_a_rule_naming_an_unknown_data_class_fails_at_startup() -> None:
    app = FastAPI()

    @app.get("/x", openapi_extra=declare(PriorityClass.STANDARD, cache=CacheRule("typo")))
    async def x() -> dict[str, int]:
        return {}

    cache = Cache(MemoryBackend(), secret=b"0123456789abcdef")

    async def nobody(key: str) -> Tenant | None:
        return None

    with pytest.raises(ConfigError, match="unknown data class 'typo'"):
        install_pipeline(app, authenticate=nobody, responses=ResponseCache(cache))


async def test_cookies_and_no_store_are_never_stored() -> None:
    app = build()
    for _ in range(2):
        _, headers, _ = await request(app, "/cookie", tenant="a")
        assert b"set-cookie" in headers
        await request(app, "/nostore", tenant="a")
    assert calls["cookie"] == 2
    assert calls["no_store"] == 2


async def test_head_and_post_and_large_bodies() -> None:
    app = build()
    status, _, body = await request(app, "/profile", tenant="a", method="HEAD")
    assert status == 200
    assert body == b""
    assert (await request(app, "/profile", tenant="a", method="POST"))[0] == 405
    status, _, body = await request(app, "/big", tenant="a")
    assert status == 200
    assert body == b"y" * 5000  # passed through whole, unstored


def test_if_none_match_parsing() -> None:
    assert matches('"a", W/"b"', '"b"')
    assert matches("*", '"x"')
    assert not matches(None, '"x"')
    assert not matches('"a"', '"b"')


@pytest.mark.parametrize("body", [b'{"a": 1}', b"\xff\xfe binary", b""])
def test_what_the_response_cache_writes_passes_its_own_read_check(body: bytes) -> None:
    headers = [(b"content-type", b"application/octet-stream"), (b"etag", etag_of(body).encode())]
    entry = new_entry(headers, body, etag_of(body))
    assert check_entry(entry) is entry
    assert body_of(entry) == body
    with pytest.raises(CorruptData, match="etag"):
        check_entry({**entry, "etag": etag_of(body + b"x")})
