"""The circuit breaker: its transition table walked pair by pair, one probe in
half-open however many callers ask at once, and each trip rule. The clock is a
variable: nothing sleeps."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from wedsync_perf.breaker import (
    TRANSITIONS,
    BreakerEvent,
    BreakerState,
    CircuitBreaker,
    ConsecutiveFailures,
    FailureRate,
)
from wedsync_perf.errors import InvalidValue, WedsyncPerfError

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
SUCCESS, FAILURE, TRIP, PROBE = (
    BreakerEvent.SUCCESS,
    BreakerEvent.FAILURE,
    BreakerEvent.TRIP,
    BreakerEvent.PROBE,
)

# The specification, written out independently of the module's table.
EXPECTED = {
    (CLOSED, SUCCESS): CLOSED,
    (CLOSED, FAILURE): CLOSED,
    (CLOSED, TRIP): OPEN,
    (OPEN, SUCCESS): OPEN,
    (OPEN, FAILURE): OPEN,
    (OPEN, PROBE): HALF_OPEN,
    (HALF_OPEN, SUCCESS): CLOSED,
    (HALF_OPEN, FAILURE): OPEN,
    (HALF_OPEN, PROBE): HALF_OPEN,
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker_in(state: BreakerState, clock: Clock, threshold: int = 3) -> CircuitBreaker:
    breaker = CircuitBreaker(ConsecutiveFailures(threshold), cooldown_s=2.0, clock=clock)
    if state is not CLOSED:
        for _ in range(threshold):
            breaker.failure()
    if state is HALF_OPEN:
        clock.now += 2.0
        assert breaker.allow()
    assert breaker.state is state
    return breaker


def fire(breaker: CircuitBreaker, event: BreakerEvent, clock: Clock) -> None:
    """Cause `event` through the public API only."""
    if event is SUCCESS:
        breaker.success()
    elif event is FAILURE:
        breaker.failure()  # below the threshold when closed
    elif event is TRIP:
        for _ in range(3):
            breaker.failure()
    else:
        clock.now += 2.0
        assert breaker.allow()


def test_the_table_is_the_specification() -> None:
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(("state", "event"), list(EXPECTED))
def test_each_transition_of_the_table(state: BreakerState, event: BreakerEvent) -> None:
    clock = Clock()
    breaker = breaker_in(state, clock)
    fire(breaker, event, clock)
    assert breaker.state is EXPECTED[(state, event)]


def test_open_refuses_until_the_cooldown_then_lets_exactly_one_probe_through() -> None:
    clock = Clock()
    breaker = breaker_in(OPEN, clock)
    clock.now += 1.99
    assert not breaker.allow()
    clock.now += 0.01
    assert breaker.allow()  # the probe
    assert [breaker.allow() for _ in range(50)] == [False] * 50  # the probe is out
    breaker.failure()  # the probe failed: open again, for a whole cooldown
    assert breaker.state is OPEN
    clock.now += 1.0
    assert not breaker.allow()
    clock.now += 1.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state is CLOSED
    assert all(breaker.allow() for _ in range(50))
    assert breaker.opened == 2


def test_a_probe_that_never_reports_is_replaced_after_a_cooldown() -> None:
    clock = Clock()
    breaker = breaker_in(HALF_OPEN, clock)
    clock.now += 1.5
    assert not breaker.allow()
    clock.now += 0.5
    assert breaker.allow()  # the first probe was lost (cancelled): a second one
    assert not breaker.allow()
    assert breaker.state is HALF_OPEN


def test_late_outcomes_while_open_change_nothing() -> None:
    clock = Clock()
    breaker = breaker_in(OPEN, clock)
    breaker.success()  # a call let through before the breaker opened
    assert breaker.state is OPEN
    assert not breaker.allow()


def test_closing_forgets_the_failures_seen_before() -> None:
    clock = Clock()
    breaker = breaker_in(HALF_OPEN, clock, threshold=3)
    breaker.success()
    breaker.failure()
    breaker.failure()
    assert breaker.state is CLOSED  # two, not five: the count restarted on closing


async def test_many_async_callers_in_half_open_get_one_probe() -> None:
    clock = Clock()
    breaker = breaker_in(OPEN, clock)
    clock.now += 2.0
    start = asyncio.Event()

    async def caller() -> bool:
        await start.wait()
        return breaker.allow()

    tasks = [asyncio.create_task(caller()) for _ in range(200)]
    await asyncio.sleep(0)
    start.set()
    answers = await asyncio.gather(*tasks)
    assert answers.count(True) == 1
    assert breaker.state is HALF_OPEN


def test_many_threads_in_half_open_get_one_probe() -> None:
    clock = Clock()
    for _ in range(20):  # several rounds: a race would show in one of them
        breaker = breaker_in(OPEN, clock)
        clock.now += 2.0
        threads = 16
        barrier = threading.Barrier(threads)

        def caller(breaker: CircuitBreaker = breaker, barrier: threading.Barrier = barrier) -> int:
            barrier.wait()
            return sum(breaker.allow() for _ in range(200))

        with ThreadPoolExecutor(threads) as pool:
            allowed = sum(pool.map(lambda _: caller(), range(threads)))
        assert allowed == 1


def test_consecutive_failures_restart_on_a_success() -> None:
    rule = ConsecutiveFailures(3)
    assert [rule.record(f, 0.0) for f in (True, True, False, True, True)] == [False] * 5
    assert rule.record(True, 0.0)


def test_failure_rate_needs_the_minimum_number_of_calls() -> None:
    rule = FailureRate(ratio=0.5, min_calls=20, window_s=10.0)
    assert not any(rule.record(True, 0.1 * i) for i in range(19))  # 19 of 19: too few
    assert rule.record(True, 1.9)


def test_failure_rate_trips_at_half_and_not_below() -> None:
    rule = FailureRate(ratio=0.5, min_calls=20, window_s=10.0)
    outcomes = [i % 2 == 0 for i in range(19)]  # 10 failures, 9 successes
    assert not any(rule.record(f, 0.0) for f in outcomes[:-1])
    assert rule.record(outcomes[-1], 0.0) is False  # 19 calls: still too few
    assert rule.record(False, 0.0)  # 10 of 20
    rule.reset()
    assert not any(rule.record(i % 3 == 0, 0.0) for i in range(30))  # a third


def test_failure_rate_forgets_calls_older_than_its_window() -> None:
    rule = FailureRate(ratio=0.5, min_calls=20, window_s=10.0)
    for _ in range(15):
        rule.record(True, 0.0)
    for i in range(15):
        assert not rule.record(False, 10.5 + i * 0.01)  # the failures have aged out
    for _ in range(14):
        rule.record(True, 11.0)
    assert rule.record(True, 11.0)  # 15 failures of 30 recent calls


def test_a_breaker_opens_by_the_rule_it_was_given() -> None:
    clock = Clock()
    breaker = CircuitBreaker(FailureRate(min_calls=4), cooldown_s=5.0, clock=clock)
    for failed in (True, False, True):
        (breaker.failure if failed else breaker.success)()
    assert breaker.state is CLOSED
    breaker.success()  # 2 of 4 failed
    assert breaker.state is OPEN


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: ConsecutiveFailures(0), "threshold"),
        (lambda: FailureRate(ratio=0), "ratio"),
        (lambda: FailureRate(min_calls=0), "min_calls"),
        (lambda: FailureRate(window_s=0), "window_s"),
        (lambda: CircuitBreaker(cooldown_s=0), "cooldown_s"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(make: object, field: str) -> None:
    with pytest.raises(InvalidValue, match=field) as caught:
        make()  # type: ignore[operator]
    assert isinstance(caught.value, WedsyncPerfError)
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field
