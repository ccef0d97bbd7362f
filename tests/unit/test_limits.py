"""Request limits on a small FastAPI app, called over ASGI: header count and size,
declared and streamed bodies, per-route caps — each refused before the app reads on."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi import FastAPI, Request

from wedsync_perf.asgi import Message
from wedsync_perf.errors import ConfigError
from wedsync_perf.pipeline import RequestLimits, Tenant
from wedsync_perf.pipeline.assemble import install_pipeline
from wedsync_perf.testing import call_asgi

LIMITS = RequestLimits(max_body_bytes=1000, max_header_bytes=2000, max_headers=20,
                       route_body_bytes={"/imports": 10_000})  # fmt: skip


async def authenticate(key: str) -> Tenant | None:
    return Tenant(1, "k1") if key == "good" else None


def make_app(limits: RequestLimits = LIMITS) -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    @app.post("/imports")
    async def imports(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    install_pipeline(app, authenticate=authenticate, limits=limits)
    return app


GOOD = [(b"x-api-key", b"good")]


def status(sent: list[Any]) -> int:
    return int(sent[0]["status"])


async def test_bodies_within_the_cap_pass() -> None:
    sent = await call_asgi(make_app(), "POST", "/echo", body=b"x" * 1000, headers=[
        *GOOD, (b"content-length", b"1000")])  # fmt: skip
    assert status(sent) == 200
    assert orjson.loads(sent[1]["body"]) == {"read": 1000}


@pytest.mark.parametrize(("path", "size"), [("/echo", 1001), ("/imports", 10_001)])
async def test_a_declared_length_over_the_route_cap_is_413_unread(path: str, size: int) -> None:
    app = make_app()
    received = 0

    async def receive() -> Message:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": b"", "http_version": "1.1",
             "headers": [(b"content-length", str(size).encode())]}  # fmt: skip
    await app(scope, receive, send)
    assert status(sent) == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    assert received == 0  # before authentication, before a byte of the body


async def stream(
    app: FastAPI, chunks: int, size: int, headers: list[tuple[bytes, bytes]]
) -> tuple[list[Message], int]:
    pulled = 0

    async def receive() -> Message:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * size, "more_body": pulled < chunks}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    chunked = [*headers, (b"transfer-encoding", b"chunked")]  # a body of no declared length
    scope = {"type": "http", "method": "POST", "path": "/echo", "raw_path": b"/echo",
             "root_path": "", "query_string": b"", "http_version": "1.1",
             "headers": chunked, "client": ("127.0.0.1", 1)}  # fmt: skip
    await app(scope, receive, send)
    return sent, pulled


async def test_a_streamed_body_is_cut_off_at_the_cap_and_the_app_answers_nothing_more() -> None:
    sent, pulled = await stream(make_app(), 1000, 300, GOOD)
    assert pulled == 4  # 1,200 bytes: the first read past the cap, no more
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert status(sent) == 413


async def test_no_body_is_read_before_authentication() -> None:
    sent, pulled = await stream(make_app(), 1000, 300, [])
    assert status(sent) == 401
    assert pulled == 0


async def test_too_many_or_too_large_headers_are_431() -> None:
    many = [(b"x-h%d" % i, b"1") for i in range(21)]
    assert status(await call_asgi(make_app(), "POST", "/echo", headers=many)) == 431
    large = [(b"x-h", b"a" * 2001)]
    assert status(await call_asgi(make_app(), "POST", "/echo", headers=large)) == 431
    fine = [*GOOD, (b"x-h", b"a" * 1500)]
    assert status(await call_asgi(make_app(), "POST", "/echo", headers=fine)) == 200


def test_a_cap_for_a_route_that_does_not_exist_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="/import"):
        make_app(RequestLimits(route_body_bytes={"/import": 10}))
    with pytest.raises(ConfigError):
        RequestLimits(max_body_bytes=-1)
