"""The middleware on real FastAPI apps, called directly over ASGI."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import APIRouter, BackgroundTasks, FastAPI
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from wedsync_perf.monitoring.middleware import MonitoringMiddleware, mark_cache_hit
from wedsync_perf.monitoring.recorder import UNMATCHED_ROUTE, Recorder
from wedsync_perf.monitoring.series import SeriesKey
from wedsync_perf.pipeline import ClassifierMiddleware, RouteTable
from wedsync_perf.priorities import PriorityClass, declare
from wedsync_perf.testing import call_asgi


class FakeClock:
    """perf_counter stand-in: time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def monitored(app: FastAPI, **kwargs: Any) -> tuple[ClassifierMiddleware, Recorder]:
    """The app behind the classifier and monitoring, as `install_pipeline` puts them."""
    recorder = Recorder(**kwargs)
    table = RouteTable.compile(app.routes)
    return ClassifierMiddleware(MonitoringMiddleware(app, recorder=recorder), table=table), recorder


def timed_by(wrapped: ClassifierMiddleware, clock: FakeClock) -> None:
    monitoring = wrapped.app
    assert isinstance(monitoring, MonitoringMiddleware)
    monitoring._clock = clock


def routes_seen(recorder: Recorder) -> set[str]:
    return {key.route for key in recorder.totals()}


def build_app() -> FastAPI:
    inner = APIRouter(prefix="/inner")

    @inner.get("/items/{item_id}", openapi_extra=declare(PriorityClass.CRITICAL))
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    outer = APIRouter()
    outer.include_router(inner, prefix="/v1")
    app = FastAPI()
    app.include_router(outer, prefix="/api")
    app.include_router(inner, prefix="/legacy")  # the same router, a second prefix

    sub = FastAPI()

    @sub.get("/things/{thing_id}", openapi_extra=declare(PriorityClass.BULK))
    async def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    app.mount("/sub", sub)
    return app


async def test_include_router_prefixes_are_kept() -> None:  # pfi#371
    app, recorder = monitored(build_app())
    await call_asgi(app, "GET", "/api/v1/inner/items/5")
    await call_asgi(app, "GET", "/legacy/inner/items/6")
    totals = recorder.totals()
    assert SeriesKey("/api/v1/inner/items/{item_id}", "GET", "2xx", "critical") in totals
    assert SeriesKey("/legacy/inner/items/{item_id}", "GET", "2xx", "critical") in totals


async def test_mounted_sub_app_gets_its_full_template() -> None:  # pfi#389
    app, recorder = monitored(build_app())
    await call_asgi(app, "GET", "/sub/things/7")
    assert SeriesKey("/sub/things/{thing_id}", "GET", "2xx", "bulk") in recorder.totals()


@pytest.mark.parametrize("root_path", ["/proxy", "/a/b"])
async def test_root_path_stays_out_of_templates(root_path: str) -> None:  # pfi#387
    app, recorder = monitored(build_app())
    await call_asgi(app, "GET", "/api/v1/inner/items/5", root_path=root_path)
    await call_asgi(app, "GET", "/sub/things/7", root_path=root_path)
    await call_asgi(app, "GET", "/legacy/inner/items/6", root_path=root_path)
    assert routes_seen(recorder) == {
        "/api/v1/inner/items/{item_id}",
        "/sub/things/{thing_id}",
        "/legacy/inner/items/{item_id}",
    }


async def test_pii_looking_paths_never_become_labels() -> None:
    app, recorder = monitored(build_app(), max_series=50)
    rng = random.Random(3)
    secrets = []
    for i in range(2000):
        email = f"user{rng.randrange(10**6)}@example.com"
        phone = f"+4477009{rng.randrange(10**5):05d}"
        ident = str(uuid.UUID(int=rng.getrandbits(128)))
        secrets += [email, phone, ident]
        path = rng.choice([f"/users/{email}", f"/call/{phone}", f"/x/{ident}", f"/{i}"])
        await call_asgi(app, "GET", path, query_string=f"email={email}".encode())
    await call_asgi(app, "GET", "/api/v1/inner/items/5", query_string=b"email=a%40b.c")
    labels = " ".join(" ".join(key) for key in recorder.totals())
    assert routes_seen(recorder) == {UNMATCHED_ROUTE, "/api/v1/inner/items/{item_id}"}
    assert not any(secret in labels for secret in secrets)
    assert recorder.series_count() == 2


async def test_exception_is_recorded_as_500_and_reraised() -> None:
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    wrapped, recorder = monitored(app)
    with pytest.raises(RuntimeError, match="kaput"):
        await call_asgi(wrapped, "GET", "/boom")
    assert SeriesKey("/boom", "GET", "5xx", "standard") in recorder.totals()


async def test_streaming_records_first_byte_and_total_separately() -> None:
    clock = FakeClock()
    app = FastAPI()

    async def chunks() -> Any:
        for _ in range(3):
            clock.now += 1.0  # each chunk takes a second
            yield b"x" * 10

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(chunks())

    wrapped, recorder = monitored(app)
    timed_by(wrapped, clock)
    await call_asgi(wrapped, "GET", "/stream")
    stats = recorder.totals()[SeriesKey("/stream", "GET", "2xx", "standard")]
    assert stats.bytes_sent == 30
    assert stats.ttfb is not None
    assert stats.ttfb.max == pytest.approx(1.0)
    assert stats.max == pytest.approx(3.0)


async def test_background_tasks_are_not_in_the_duration() -> None:
    clock = FakeClock()
    app = FastAPI()

    def slow_cleanup() -> None:
        clock.now += 60.0  # a minute of work after the response was sent

    @app.post("/checkin")
    async def checkin(tasks: BackgroundTasks) -> dict[str, bool]:
        clock.now += 0.02
        tasks.add_task(slow_cleanup)
        return {"ok": True}

    wrapped, recorder = monitored(app)
    timed_by(wrapped, clock)
    await call_asgi(wrapped, "POST", "/checkin")
    stats = recorder.totals()[SeriesKey("/checkin", "POST", "2xx", "standard")]
    assert stats.max == pytest.approx(0.02)


async def test_client_disconnect_is_recorded_as_499() -> None:
    app = FastAPI()

    async def chunks() -> Any:
        for _ in range(5):
            yield b"y"

    @app.get("/feed")
    async def feed() -> StreamingResponse:
        return StreamingResponse(chunks())

    wrapped, recorder = monitored(app)
    sent = 0

    async def hang_up(message: MutableMapping[str, Any]) -> None:
        nonlocal sent
        if message["type"] == "http.response.body":
            sent += 1
            if sent == 2:
                raise ConnectionResetError("client went away")

    # Starlette turns the OSError from send() into ClientDisconnect; either propagates.
    with pytest.raises((OSError, ClientDisconnect)):
        await call_asgi(wrapped, "GET", "/feed", send_hook=hang_up)
    assert SeriesKey("/feed", "GET", "4xx", "standard") in recorder.totals()


async def test_cache_hits_are_counted() -> None:
    app = FastAPI()

    @app.get("/cached")
    async def cached() -> dict[str, int]:
        return {"v": 1}

    inner = app.build_middleware_stack()

    async def marking(scope: Any, receive: Any, send: Any) -> None:
        mark_cache_hit(scope)
        await inner(scope, receive, send)

    recorder = Recorder()
    table = RouteTable.compile(app.routes)
    wrapped = ClassifierMiddleware(MonitoringMiddleware(marking, recorder=recorder), table=table)
    await call_asgi(wrapped, "GET", "/cached")
    await call_asgi(wrapped, "GET", "/cached")
    stats = next(iter(recorder.totals().values()))
    assert stats.cache_hits == 2


async def test_lifespan_passes_through() -> None:
    started = asyncio.Event()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        started.set()
        yield

    app = FastAPI(lifespan=lifespan)

    wrapped, recorder = monitored(app)
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    replies: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        replies.append(message)

    await wrapped({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert started.is_set()
    assert [r["type"] for r in replies] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert recorder.totals() == {}
