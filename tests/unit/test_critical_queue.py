"""Where critical requests wait when there is no room: first come first served while
the queue keeps emptying, newest first and a short wait once it has not emptied for an
interval, oldest refused first — and no wait outlives its bound."""

from __future__ import annotations

import asyncio

import pytest

from wedsync_perf.errors import InvalidValue
from wedsync_perf.pipeline import ClassifierMiddleware, RouteTable
from wedsync_perf.scaling.admission import AdaptiveLimit, AdmissionController, AdmissionMiddleware
from wedsync_perf.scaling.critical_queue import CriticalQueue
from wedsync_perf.testing import call_asgi

from .test_admission import app_with_held_requests, status_of


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def enqueue(queue: CriticalQueue, n: int, clock: Clock, step_s: float = 0.001) -> list:  # type: ignore[type-arg]
    """`n` waiters, `step_s` apart; the clock stops at the last one's arrival."""
    tasks = []
    for i in range(n):
        clock.now += step_s if i else 0.0
        tasks.append(asyncio.create_task(queue.wait()))
        await asyncio.sleep(0)  # it is in the queue now
    return tasks


async def test_in_the_normal_regime_the_oldest_waiter_goes_first() -> None:
    clock = Clock()
    queue = CriticalQueue(timeout_s=5, overload_wait_s=0.02, interval_s=0.1, clock=clock)
    first, second, third = await enqueue(queue, 3, clock)
    assert len(queue) == 3
    assert not queue.overloaded()
    assert queue.hand_over()
    assert queue.woken == 1
    assert await first is True
    assert queue.woken == 0  # it went in: no longer counted as woken
    assert not second.done()
    assert not third.done()
    queue.hand_over(), queue.hand_over()
    assert await second is True
    assert await third is True
    assert len(queue) == 0
    assert not queue.hand_over()


async def test_once_the_queue_has_not_emptied_for_an_interval_the_newest_goes_first() -> None:
    clock = Clock()
    queue = CriticalQueue(timeout_s=5, overload_wait_s=0.02, interval_s=0.1, clock=clock)
    tasks = await enqueue(queue, 5, clock, step_s=0.03)  # the first has waited 0.12 s
    assert queue.overloaded()
    # Overloaded: every waiter past 20 ms is refused, oldest first; the newest remains.
    assert queue.expire() == 4
    assert [await t for t in tasks[:4]] == [False] * 4
    assert queue.expired == 4
    assert len(queue) == 1
    clock.now += 0.001
    late = await enqueue(queue, 2, clock)
    assert queue.hand_over()  # LIFO: the latest arrival
    assert await late[-1] is True
    assert not tasks[4].done()
    assert not late[0].done()
    clock.now += 1
    queue.expire()
    assert await tasks[4] is False
    assert await late[0] is False
    assert not queue.overloaded()  # empty again: the regime is normal


async def test_in_the_normal_regime_a_waiter_is_refused_after_timeout() -> None:
    clock = Clock()
    queue = CriticalQueue(timeout_s=0.5, overload_wait_s=0.02, interval_s=10, clock=clock)
    (task,) = await enqueue(queue, 1, clock)
    clock.now += 0.4
    assert queue.expire() == 0
    clock.now += 0.1
    assert queue.expire() == 1
    assert await task is False


async def test_a_queue_nobody_ticks_still_bounds_every_wait() -> None:
    queue = CriticalQueue(timeout_s=0.01, overload_wait_s=0.01)
    assert await asyncio.wait_for(queue.wait(), timeout=30) is False
    assert queue.expired == 1
    assert len(queue) == 0


async def test_a_cancelled_waiter_leaves_and_a_cancelled_woken_one_gives_its_room_back() -> None:
    clock = Clock()
    queue = CriticalQueue(timeout_s=5, clock=clock)
    first, second = await enqueue(queue, 2, clock)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert len(queue) == 1
    assert queue.hand_over()  # to `second`, then cancelled before it could run
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert queue.woken == 0
    assert len(queue) == 0


def test_the_waits_must_be_ordered() -> None:
    with pytest.raises(InvalidValue, match="overload_wait_s"):
        CriticalQueue(timeout_s=0.01, overload_wait_s=0.5)
    with pytest.raises(InvalidValue, match="critical_floor"):
        AdmissionController(critical_floor=0)


def held_app(
    clock: Clock, release: asyncio.Event, critical_floor: int
) -> tuple[ClassifierMiddleware, AdmissionController, CriticalQueue]:
    """Routes held until `release`, behind a limit of 1 and `critical_floor`."""
    queue = CriticalQueue(timeout_s=5, overload_wait_s=0.02, interval_s=0.1, clock=clock)
    controller = AdmissionController(
        limit=AdaptiveLimit(initial=1, min_limit=1, max_limit=100),
        critical_floor=critical_floor,
        queue=queue,
    )
    inner = app_with_held_requests(release)
    table = RouteTable.compile(inner.routes)
    return (
        ClassifierMiddleware(AdmissionMiddleware(inner, controller), table=table),
        controller,
        queue,
    )


async def test_critical_work_beyond_capacity_waits_then_is_refused_and_leaves_no_queue() -> None:
    """Critical requests alone overrun the instance: those beyond the floor wait;
    standard work gets nothing while they do; each finishing request lets one in; under
    a sustained overload the oldest are answered 503 + Retry-After at the next tick;
    once the overload is over nothing is left waiting."""
    clock, release = Clock(), asyncio.Event()
    app, controller, queue = held_app(clock, release, critical_floor=2)
    running = [asyncio.create_task(call_asgi(app, "GET", "/timeline")) for _ in range(2)]
    for _ in range(4):
        await asyncio.sleep(0)
    assert controller.critical_in_flight == 2  # the floor
    waiting = [asyncio.create_task(call_asgi(app, "GET", "/timeline")) for _ in range(4)]
    for _ in range(4):
        await asyncio.sleep(0)
    assert len(queue) == 4
    assert status_of(await call_asgi(app, "GET", "/search")) == 503  # nothing overtakes
    clock.now += 0.2  # the queue has not emptied for longer than the interval
    controller.record_tick(0.0)  # the overloaded regime: all four waited > 20 ms
    refused = await asyncio.gather(*waiting)
    assert [status_of(r) for r in refused] == [503] * 4
    start = next(m for m in refused[0] if m["type"] == "http.response.start")
    assert dict(start["headers"])[b"retry-after"] == b"1"
    assert len(queue) == 0
    assert controller.report()["queue_expired"] == 4
    release.set()
    assert [status_of(r) for r in await asyncio.gather(*running)] == [200, 200]
    assert controller.in_flight == 0
    assert controller.critical_in_flight == 0
    assert queue.woken == 0


async def test_a_finishing_request_lets_the_next_critical_waiter_in() -> None:
    clock, release = Clock(), asyncio.Event()
    app, controller, queue = held_app(clock, release, critical_floor=1)
    tasks = [asyncio.create_task(call_asgi(app, "GET", "/timeline")) for _ in range(3)]
    for _ in range(4):
        await asyncio.sleep(0)
    assert controller.critical_in_flight == 1
    assert len(queue) == 2
    release.set()  # each one that finishes wakes the next: all three are served
    assert [status_of(r) for r in await asyncio.gather(*tasks)] == [200, 200, 200]
    assert controller.report()["admitted"]["critical"] == 3
    assert controller.in_flight == 0
    assert len(queue) == 0
