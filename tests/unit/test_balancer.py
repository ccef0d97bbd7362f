"""The balancer's rules against fake upstreams (httpx.MockTransport plays the backends;
the balancer itself is the real one)."""

from __future__ import annotations

import httpx
import pytest

from wedsync_perf.scaling.balancer import BalancedTransport, CircuitOpen, RetryBudget


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
    answered = paused = 0
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(200):
            try:
                assert (await client.get("http://vendors/x")).status_code == 500
                answered += 1
            except CircuitOpen:
                paused += 1
    assert transport.retries <= 0.2 * answered + 1  # not 2 extra attempts each
    assert len(seen) == answered + transport.retries
    assert paused > 150  # the breaker opened: the failing upstream stopped being called


async def test_the_breaker_lets_one_call_through_after_open_s_and_closes_on_success() -> None:
    seen: list[int] = []
    clock = Clock()
    statuses = dict.fromkeys(range(9000, 9004), 500)
    transport = BalancedTransport([f"http://127.0.0.1:{9000 + i}" for i in range(4)], clock=clock,
                                  max_attempts=1, open_s=5, inner=upstream(statuses, seen))  # fmt: skip
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(20):
            await client.get("http://vendors/x")
        with pytest.raises(CircuitOpen):
            await client.get("http://vendors/x")
        calls = len(seen)
        clock.now += 6
        statuses.clear()  # the upstream recovered
        assert (await client.get("http://vendors/x")).status_code == 200  # the half-open probe
        assert (await client.get("http://vendors/x")).status_code == 200  # closed again
        assert len(seen) == calls + 2


async def test_active_health_checks_take_a_host_out_and_bring_it_back() -> None:
    down = {9001}
    probes: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        probes.append(request.url.path)
        return httpx.Response(503 if request.url.port in down else 200)

    transport = BalancedTransport(["http://127.0.0.1:9000", "http://127.0.0.1:9001"],
                                  inner=httpx.MockTransport(handle))  # fmt: skip
    sick = transport.backends[1]
    for _ in range(2):
        await transport.check_health()
    assert sick.healthy  # two failed probes: not yet
    await transport.check_health()
    assert not sick.healthy
    assert all(transport.pick() is transport.backends[0] for _ in range(20))
    down.clear()
    await transport.check_health()
    assert sick.healthy
    assert set(probes) == {"/health/live"}


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
