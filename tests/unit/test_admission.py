"""Priority admission control: the adaptive limit, and shedding bulk before standard
before critical, answering 503 + Retry-After at once."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from wedsync_perf.pipeline import ClassifierMiddleware, RouteTable
from wedsync_perf.priorities import PriorityClass, declare
from wedsync_perf.scaling.admission import AdaptiveLimit, AdmissionController, AdmissionMiddleware
from wedsync_perf.testing import call_asgi


def test_the_limit_backs_off_when_congested_grows_while_in_use_and_restarts_when_quiet() -> None:
    limit = AdaptiveLimit(initial=20, min_limit=4, max_limit=200, backoff=0.5)
    limit.update(congested=True, in_flight=20)
    assert limit.limit == 10
    for _ in range(10):
        limit.update(congested=True, in_flight=20)
    assert limit.limit == 4  # never below the floor
    for _ in range(3):
        limit.update(congested=False, in_flight=int(limit.limit))
    assert limit.limit == 7  # additive increase while the limit is used
    limit.update(congested=False, in_flight=1)
    assert limit.limit == 20  # quiet: back to the start, not left at the floor
    for _ in range(300):
        limit.update(congested=False, in_flight=int(limit.limit))
    assert limit.limit == 200  # never above the ceiling


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
    inner = app_with_held_requests(release)
    table = RouteTable.compile(inner.routes, internal={"/health/live"})
    app = ClassifierMiddleware(AdmissionMiddleware(inner, controller), table=table)
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


def congest(controller: AdmissionController, ticks: int = 40, late_s: float = 0.2) -> None:
    for _ in range(ticks):
        controller.record_tick(late_s)


def test_a_late_event_loop_shrinks_the_limit_until_only_critical_work_gets_in() -> None:
    controller = AdmissionController(limit=AdaptiveLimit(initial=100, min_limit=2))
    controller.in_flight = 10
    assert controller.admits(PriorityClass.BULK)
    congest(controller)  # every tick 200 ms late
    assert controller.limit.limit == 2
    controller.in_flight = 2
    assert not controller.admits(PriorityClass.BULK)
    assert not controller.admits(PriorityClass.STANDARD)
    assert controller.admits(PriorityClass.CRITICAL)
    assert controller.report()["loop_lag_ms"] == 200.0
    controller.in_flight = 0  # a lone request still gets in at the floor: never starved
    assert controller.admits(PriorityClass.BULK)


def test_one_stall_is_not_congestion_but_a_sustained_lag_is() -> None:
    controller = AdmissionController(limit=AdaptiveLimit(initial=100))
    for late in (0.001, 4.0, 0.002, 0.001):  # one 4 s stall among quick ticks
        controller.record_tick(late)
    assert controller.congested_ticks == 0
    for late in (0.3, 0.2, 0.4):
        controller.record_tick(late)
    assert controller.loop_lag_s == 0.2
    assert controller.congested_ticks == 1  # the third late tick in a row


def test_slow_critical_requests_shed_the_rest_even_with_a_prompt_loop() -> None:
    controller = AdmissionController(limit=AdaptiveLimit(initial=100), critical_target_s=0.025)
    controller.in_flight = 60
    for _ in range(40):
        for latency in (0.05, 0.06, 0.2):  # suppliers on site waiting 50+ ms
            controller.record_critical(latency)
        controller.record_tick(0.0)
    assert controller.report()["critical_median_ms"] == 60.0
    assert not controller.admits(PriorityClass.STANDARD)
    for _ in range(3):  # critical answers quick again: the window forgets the slow ones
        controller.record_critical(0.004)
        controller.record_tick(0.0)
    assert controller.critical_median_s == 0.004
    before = controller.limit.limit
    controller.record_tick(0.0)
    assert controller.limit.limit == before + 1  # in use and not congested: grows again


def test_a_slow_critical_route_without_concurrency_is_not_congestion() -> None:
    controller = AdmissionController(limit=AdaptiveLimit(initial=20, min_limit=4))
    controller.in_flight = 1  # one slow report at a time: nothing for it to queue behind
    for _ in range(20):
        controller.record_critical(0.3)
        controller.record_tick(0.0)
    assert controller.congested_ticks == 0
    assert controller.limit.limit == 20


def test_another_queue_s_delay_counts_as_congestion() -> None:
    waiting = [0.0]
    controller = AdmissionController(limit=AdaptiveLimit(initial=50), delay_target_s=0.01)
    controller.add_delay_signal(lambda: waiting[0])
    controller.in_flight = 40
    waiting[0] = 0.5  # the pool's oldest waiter has waited half a second
    congest(controller, late_s=0.0)
    assert controller.report()["queueing_delay_ms"] == 500.0
    assert not controller.admits(PriorityClass.STANDARD)


async def test_the_watcher_ticks_on_the_running_loop() -> None:
    controller = AdmissionController(tick_s=0.001)
    controller.watch_loop()
    try:
        while controller.ticks < 3:  # noqa: ASYNC110 - until it has ticked: state, not time
            await asyncio.sleep(0)
    finally:
        await controller.stop()
    assert controller.report()["ticks"] >= 3
