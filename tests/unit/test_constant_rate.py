"""The constant-rate generator against a real local HTTP server: every due request is
recorded once (answered, failed or timed out), and latency counts from when a request
was due, not from when a connection was free (coordinated omission)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from wedsync_perf.loadgen.constant_rate import _Incomplete, _response_length, constant_rate, encode
from wedsync_perf.loadgen.driver import RequestSpec
from wedsync_perf.priorities import PriorityClass
from wedsync_perf.testing import http_upstream


def spec(path: str, priority: PriorityClass = PriorityClass.CRITICAL) -> RequestSpec:
    return RequestSpec(f"GET {path}", priority, "GET", path)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[int, list[str]]]:
    seen: list[str] = []
    first = asyncio.Event()

    async def respond(method: str, path: str) -> tuple[str, bytes]:
        seen.append(path)
        if path == "/hang":
            await asyncio.Event().wait()
        if path == "/stall-first" and not first.is_set():
            first.set()
            await asyncio.sleep(0.3)  # the server's behaviour, not a race in the test
        if path == "/missing":
            return "404 Not Found", b"{}"
        return "200 OK", b'{"ok":true}'

    async with http_upstream(respond) as url:
        yield int(url.rsplit(":", 1)[1]), seen


async def test_every_due_request_is_recorded_once_with_its_status(
    upstream: tuple[int, list[str]],
) -> None:
    port, seen = upstream
    requests = [encode(spec("/ok"), "h"), encode(spec("/missing", PriorityClass.BULK), "h")]
    stats = await constant_rate("127.0.0.1", port, requests, rps=200, duration_s=0.5)
    ok, missing = stats.endpoints["GET /ok"], stats.endpoints["GET /missing"]
    assert (ok.count, ok.errors, ok.statuses) == (50, 0, {200: 50})
    assert (missing.count, missing.errors, missing.statuses) == (50, 50, {404: 50})
    assert len(seen) == 100


async def test_an_unanswered_request_is_a_timeout_not_a_hang(
    upstream: tuple[int, list[str]],
) -> None:
    port, _ = upstream
    requests = [encode(spec("/hang"), "h"), encode(spec("/ok"), "h")]
    stats = await constant_rate("127.0.0.1", port, requests, rps=40, duration_s=0.5, timeout_s=0.2)
    hang = stats.endpoints["GET /hang"]
    assert (hang.count, hang.statuses) == (10, {0: 10})
    assert stats.endpoints["GET /ok"].statuses == {200: 10}


async def test_latency_counts_from_when_a_request_was_due(upstream: tuple[int, list[str]]) -> None:
    """One connection, and the server holds its first answer 0.3 s: the requests due in
    the next 0.2 s wait for it. Timed from when they were sent, they would look instant."""
    port, _ = upstream
    requests = [encode(spec("/stall-first"), "h")]
    stats = await constant_rate(
        "127.0.0.1", port, requests, rps=100, duration_s=0.2, max_connections=1
    )
    recorded = stats.endpoints["GET /stall-first"]
    assert recorded.statuses == {200: 20}
    assert (recorded.quantile_ms(0.5) or 0) >= 100  # each waited at least until 0.3 s


def test_responses_are_delimited_by_length_or_chunks() -> None:
    fixed = bytearray(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1")
    assert _response_length(fixed) == (503, len(fixed) - len(b"HTTP/1.1"), False)
    chunked = bytearray(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    )
    assert _response_length(chunked) == (200, len(chunked), True)
    for cut in (10, len(chunked) - 3):
        with pytest.raises(_Incomplete):
            _response_length(chunked[:cut])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="rps"):
        asyncio.run(constant_rate("127.0.0.1", 1, [encode(spec("/"), "h")], rps=0, duration_s=1))
    with pytest.raises(ValueError, match="empty"):
        asyncio.run(constant_rate("127.0.0.1", 1, [], rps=1, duration_s=1))


def test_a_request_body_is_sent_with_its_length() -> None:
    post = RequestSpec("POST /x", PriorityClass.BULK, "POST", "/x", json={"a": 1})
    data = encode(post, "api:80").data
    assert data.startswith(b"POST /x HTTP/1.1\r\nhost: api:80\r\n")
    assert b'content-type: application/json\r\ncontent-length: 8\r\n\r\n{"a": 1}' in data
