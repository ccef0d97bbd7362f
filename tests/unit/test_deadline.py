"""Every request has an overall deadline by priority class: past it, the handler is
cancelled where it waits and the client gets 503 + Retry-After (or, once the response
has started, a cut-off response) — never a request held forever."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from wedsync_perf.errors import InvalidValue
from wedsync_perf.pipeline import ClassifierMiddleware, DeadlineMiddleware, Deadlines, RouteTable
from wedsync_perf.priorities import PriorityClass, declare
from wedsync_perf.testing import call_asgi

from .test_admission import status_of


def app_with(deadlines: Deadlines) -> tuple[ClassifierMiddleware, dict[str, Any]]:
    seen: dict[str, Any] = {"unwound": 0}
    app = FastAPI()

    @app.get("/timeline", openapi_extra=declare(PriorityClass.CRITICAL))
    async def timeline() -> dict[str, str]:
        try:
            await asyncio.Event().wait()  # a statement whose backend never answers
        finally:
            seen["unwound"] += 1  # cancellation reaches what the handler waits on
        return {}

    @app.post("/imports", openapi_extra=declare(PriorityClass.BULK))
    async def imports() -> dict[str, str]:
        await asyncio.sleep(0.05)
        return {"ok": "bulk"}

    @app.get("/stream", openapi_extra=declare(PriorityClass.CRITICAL))
    async def stream() -> StreamingResponse:
        async def chunks() -> Any:
            yield b"first"
            await asyncio.Event().wait()

        return StreamingResponse(chunks())

    @app.get("/own-timeout", openapi_extra=declare(PriorityClass.STANDARD))
    async def own_timeout() -> dict[str, str]:
        raise TimeoutError("the app's own")

    table = RouteTable.compile(app.routes)
    return ClassifierMiddleware(DeadlineMiddleware(app, deadlines), table=table), seen


async def test_a_request_past_its_deadline_is_cancelled_and_answered_503() -> None:
    deadlines = Deadlines({PriorityClass.CRITICAL: 0.01}, retry_after_s=2)
    app, seen = app_with(deadlines)
    sent = await asyncio.wait_for(call_asgi(app, "GET", "/timeline"), timeout=30)
    assert status_of(sent) == 503
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert dict(start["headers"])[b"retry-after"] == b"2"
    assert b"took too long" in b"".join(m.get("body", b"") for m in sent)
    assert seen["unwound"] == 1
    assert deadlines.expired == 1


async def test_each_class_has_its_own_deadline() -> None:
    deadlines = Deadlines({PriorityClass.CRITICAL: 0.01, PriorityClass.BULK: 30})
    app, _ = app_with(deadlines)
    assert status_of(await call_asgi(app, "POST", "/imports")) == 200
    assert deadlines.expired == 0
    assert deadlines.seconds[PriorityClass.STANDARD] == 10.0  # left out: the default


async def test_a_started_response_is_cut_off_not_answered_twice() -> None:
    deadlines = Deadlines({PriorityClass.CRITICAL: 0.05})
    app, _ = app_with(deadlines)
    sent = await asyncio.wait_for(call_asgi(app, "GET", "/stream"), 30)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [s["status"] for s in starts] == [200]
    assert not any(m["type"] == "http.response.body" and not m.get("more_body") for m in sent)
    assert deadlines.expired == 1


async def test_the_app_s_own_timeout_error_is_not_taken_for_the_deadline() -> None:
    deadlines = Deadlines()
    app, _ = app_with(deadlines)
    with pytest.raises(TimeoutError, match="the app's own"):
        await call_asgi(app, "GET", "/own-timeout")
    assert deadlines.expired == 0


def test_a_deadline_must_be_positive() -> None:
    with pytest.raises(InvalidValue, match="deadline"):
        Deadlines({PriorityClass.BULK: 0})
