"""Priority admission control: the adaptive limit, and shedding bulk before standard
before critical, answering 503 + Retry-After at once."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from wedsync_perf.priorities import PriorityClass, declare
from wedsync_perf.scaling.admission import AdaptiveLimit, AdmissionController, AdmissionMiddleware
from wedsync_perf.testing import call_asgi


def test_the_limit_grows_at_baseline_latency_and_shrinks_when_latency_climbs() -> None:
    limit = AdaptiveLimit(initial=20, min_limit=4, max_limit=200)
    for _ in range(200):
        limit.sample(0.010, in_flight=int(limit.limit))
    grown = limit.limit
    assert grown > 40
    for _ in range(50):
        limit.sample(0.200, in_flight=int(limit.limit))  # 20x the baseline: queueing
    assert limit.limit < grown / 2


def app_with_held_requests(release: asyncio.Event) -> FastAPI:
    app = FastAPI()

    @app.get("/timeline", openapi_extra=declare(PriorityClass.CRITICAL))
    async def timeline() -> dict[str, str]:
        await release.wait()
        return {"ok": "critical"}

    @app.get("/search", openapi_extra=declare(PriorityClass.STANDARD))
    async def search() -> dict[str, str]:
        await release.wait()
        return {"ok": "standard"}

    @app.post("/imports", openapi_extra=declare(PriorityClass.BULK))
    async def imports() -> dict[str, str]:
        await release.wait()
        return {"ok": "bulk"}

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "pass"}

    return app


def status_of(sent: list) -> int:  # type: ignore[type-arg]
    return int(next(m["status"] for m in sent if m["type"] == "http.response.start"))


async def test_bulk_is_shed_first_then_standard_and_critical_keeps_its_room() -> None:
    release = asyncio.Event()
    fixed = AdaptiveLimit(initial=10, min_limit=10, max_limit=10)
    controller = AdmissionController(limit=fixed, bulk_share=0.5, standard_share=0.8)
    app = AdmissionMiddleware(app_with_held_requests(release), controller)
    held = [asyncio.create_task(call_asgi(app, "POST", "/imports")) for _ in range(5)]
    await asyncio.sleep(0)  # let them enter (no timing: one loop turn each)
    for _ in range(3):
        await asyncio.sleep(0)
    assert controller.in_flight == 5
    shed = await call_asgi(app, "POST", "/imports")  # bulk's half is full
    assert status_of(shed) == 503
    headers = dict(next(m["headers"] for m in shed if m["type"] == "http.response.start"))
    assert headers[b"retry-after"] == b"1"
    held += [asyncio.create_task(call_asgi(app, "GET", "/search")) for _ in range(3)]
    for _ in range(4):
        await asyncio.sleep(0)
    assert status_of(await call_asgi(app, "GET", "/search")) == 503  # 8 of 10: standard full
    held += [asyncio.create_task(call_asgi(app, "GET", "/timeline")) for _ in range(2)]
    for _ in range(4):
        await asyncio.sleep(0)
    assert controller.in_flight == 10
    assert status_of(await call_asgi(app, "GET", "/timeline")) == 503  # the hard cap (max_limit)
    assert status_of(await call_asgi(app, "GET", "/health/live")) == 200  # probes never shed
    release.set()
    results = await asyncio.gather(*held)
    assert all(status_of(r) == 200 for r in results)
    report = controller.report()
    assert report["rejected"] == {"critical": 1, "standard": 1, "bulk": 1}
    assert report["admitted"] == {"critical": 2, "standard": 3, "bulk": 5}
    assert controller.in_flight == 0


def test_a_late_event_loop_admits_only_critical_work() -> None:
    controller = AdmissionController(limit=AdaptiveLimit(initial=100), lag_shed_s=0.05)
    assert controller.admits(PriorityClass.BULK)
    for _ in range(5):
        controller.record_tick(0.2)  # every recent tick 200 ms late
    assert controller.admits(PriorityClass.BULK)  # but nothing is piling up: a stall, not load
    controller.in_flight = 8
    assert not controller.admits(PriorityClass.BULK)
    assert not controller.admits(PriorityClass.STANDARD)
    assert controller.admits(PriorityClass.CRITICAL)
    assert controller.report()["loop_lag_ms"] == 200.0


def test_one_stall_is_not_overload_but_a_sustained_lag_is() -> None:
    controller = AdmissionController(limit=AdaptiveLimit(initial=100), lag_shed_s=0.05)
    for late in (0.001, 0.002, 4.0, 0.001, 0.002):  # one 4 s stall among quick ticks
        controller.record_tick(late)
    assert controller.loop_lag_s < controller.lag_shed_s
    for late in (0.3, 0.2, 0.4, 0.25, 0.3):  # every tick late: overloaded
        controller.record_tick(late)
    assert controller.loop_lag_s == 0.2
    controller.in_flight = 20
    assert not controller.admits(PriorityClass.STANDARD)


def test_a_stale_lag_figure_is_ignored() -> None:
    controller = AdmissionController(limit=AdaptiveLimit(initial=100), lag_shed_s=0.05)
    controller.in_flight = 20
    for _ in range(5):
        controller.record_tick(0.3)
    assert not controller.admits(PriorityClass.BULK)
    controller._last_tick -= 5  # no tick for five seconds: the watcher is not running here
    assert controller.admits(PriorityClass.BULK)
