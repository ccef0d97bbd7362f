"""The balancer's rules against fake upstreams (httpx.MockTransport plays the backends;
the balancer itself is the real one)."""

from __future__ import annotations

import httpx
import pytest

from wedsync_perf.scaling.balancer import BalancedTransport, RetryBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def upstream(statuses: dict[int, int], seen: list[int]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        port = request.url.port or 0
        seen.append(port)
        return httpx.Response(statuses.get(port, 200), text="ok")

    return httpx.MockTransport(handle)


async def test_a_failing_host_is_ejected_after_five_failures_and_retried_elsewhere() -> None:
    seen: list[int] = []
    clock = Clock()
    hosts = [f"http://127.0.0.1:{9000 + i}" for i in range(10)]
    transport = BalancedTransport(hosts, policy="round_robin", clock=clock,
                                  inner=upstream({9001: 503}, seen), seed=1)  # fmt: skip
    async with httpx.AsyncClient(transport=transport) as client:
        statuses = [(await client.get("http://vendors/x")).status_code for _ in range(100)]
    assert statuses.count(200) == 100  # every 503 was retried on another host
    broken = transport.backends[1]
    assert broken.ejections == 1
    assert broken.ejected_until == pytest.approx(clock.now + 30)
    assert seen.count(9001) == 5  # ejected after its fifth failure, never tried again
    clock.now += 31
    transport.pick()  # back in the rotation once the ejection ends
    assert broken.ejected_until <= clock.now


async def test_the_retry_budget_caps_retries_when_everything_fails() -> None:
    seen: list[int] = []
    clock = Clock()
    hosts = [f"http://127.0.0.1:{9000 + i}" for i in range(4)]
    budget = RetryBudget(ratio=0.2, min_per_s=0.0, window_s=10)
    transport = BalancedTransport(hosts, clock=clock, budget=budget, max_attempts=3,
                                  inner=upstream(dict.fromkeys(range(9000, 9004), 500), seen))  # fmt: skip
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(200):
            assert (await client.get("http://vendors/x")).status_code == 500
    assert transport.retries <= 0.2 * 200 + 1  # not 2 extra attempts each: 400
    assert len(seen) == 200 + transport.retries


def test_p2c_ewma_avoids_a_slow_host_and_a_fast_failing_one() -> None:
    clock = Clock()
    transport = BalancedTransport([f"http://h{i}:80" for i in range(3)], seed=2, clock=clock)
    slow, failing, good = transport.backends
    transport._record(slow, 2.0, failed=False)
    transport._record(failing, 0.001, failed=True)  # fast 500: counted as slow
    transport._record(good, 0.02, failed=False)
    picks = [transport.pick() for _ in range(200)]
    assert picks.count(good) > 120  # it wins every pair it is in (two pairs of three)
    assert not any(p is slow for p in picks)  # slower than the failing host's penalty
    assert failing.ewma_s >= 1.0
