"""HttpCacheMiddleware on a small Starlette app whose auth middleware resolves the
tenant first, called directly over ASGI."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from wedsync_perf.caching import Cache, CachePolicy, DataPolicy, MemoryBackend
from wedsync_perf.caching.http import HttpCacheMiddleware, etag_of, matches
from wedsync_perf.testing import call_asgi

calls: dict[str, int] = {}


async def profile(request: Request) -> Response:
    calls["profile"] = calls.get("profile", 0) + 1
    return JSONResponse({"tenant": request.scope.get("tenant"), "n": calls["profile"]})


async def with_cookie(request: Request) -> Response:
    calls["cookie"] = calls.get("cookie", 0) + 1
    response = PlainTextResponse("x")
    response.set_cookie("session", "abc")
    return response


async def no_store(request: Request) -> Response:
    calls["no_store"] = calls.get("no_store", 0) + 1
    return PlainTextResponse("x", headers={"Cache-Control": "no-store"})


async def big(request: Request) -> Response:
    return PlainTextResponse("y" * 5000)


def build() -> Any:
    calls.clear()
    app = Starlette(routes=[
        Route("/profile", profile), Route("/cookie", with_cookie), Route("/nostore", no_store),
        Route("/big", big),
    ])  # fmt: skip
    policy = CachePolicy({"default": DataPolicy(60), "http_response": DataPolicy(60)})
    cache = Cache(MemoryBackend(), secret=b"0123456789abcdef", policy=policy)
    cached = HttpCacheMiddleware(
        app, cache=cache, tenant_of=lambda scope: scope.get("tenant"), max_body_bytes=1000
    )

    async def auth(scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers", []))
        tenant = headers.get(b"x-tenant")
        if tenant:
            scope["tenant"] = tenant.decode()
        await cached(scope, receive, send)

    return auth


async def request(app: Any, path: str, tenant: str | None = None, etag: str | None = None,
                  method: str = "GET") -> tuple[int, dict[bytes, bytes], bytes]:  # fmt: skip
    headers = []
    if tenant:
        headers.append((b"x-tenant", tenant.encode()))
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
    assert (await request(app, "/profile", tenant="a"))[2] == body
    assert calls["profile"] == 1
    other = await request(app, "/profile", tenant="b")
    assert b'"tenant":"b"' in other[2]
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
    for _ in range(3):
        await request(app, "/profile")
    assert calls["profile"] == 3


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
