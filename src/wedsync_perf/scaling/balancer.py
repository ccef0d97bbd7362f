"""Client-side load balancing for calls to upstreams (vendor systems, internal
services), as an httpx transport: `httpx.AsyncClient(transport=BalancedTransport(...))`.

* **Choice**: power of two choices over peak-EWMA latency (Finagle/Linkerd: cost =
  EWMA RTT × (pending + 1); a slower sample replaces the estimate at once, faster ones
  decay in over `decay_s`). Round robin and least-request are there for comparison.
* **Outlier ejection** (Envoy's defaults): 5 consecutive 5xx or connection failures
  eject a host for 30 s × the times it was ejected (at most 300 s), never more than
  10 % of hosts (at least one).
* **Failures count as slow** (`failure_penalty_s`): a fast 500 would otherwise make a
  broken host look like the best one.
* **Retry budget** (Linkerd/Envoy): a failed attempt is retried on another host only
  while retries stay under 20 % of requests over the last 10 s, plus 3 per second —
  so when every backend fails, the load does not triple.
* **Active health checks** (`check_health()`, or `start_health_checks()` in the
  background): 3 failed probes take a host out, one good probe brings it back.
* **Circuit breaker** (`wedsync_perf.breaker`): when half or more of the last 10 s of
  calls failed (at least 20), calls fail at once with `CircuitOpen` for `open_s`; then
  one call is let through to see whether the upstream is back.

A request's URL names the service (any host); the transport replaces scheme, host and
port with the chosen backend's.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import httpx

from wedsync_perf.background import BackgroundLoop
from wedsync_perf.breaker import BreakerState, CircuitBreaker, FailureRate
from wedsync_perf.errors import InvalidValue, WedsyncPerfError

__all__ = ["Backend", "BalancedTransport", "CircuitOpen", "RetryBudget"]


class CircuitOpen(httpx.TransportError, WedsyncPerfError):
    """The upstream is failing: this call was not sent (try again after a while)."""

    http_status = 503


Policy = Literal["p2c_ewma", "round_robin", "least_request"]


@dataclass
class Backend:
    url: httpx.URL
    ewma_s: float = 0.1  # before any sample: a guess, so an unknown host is not "free"
    last_sample: float = 0.0
    pending: int = 0
    consecutive_failures: int = 0
    ejections: int = 0
    ejected_until: float = 0.0
    healthy: bool = True
    failed_probes: int = 0

    def cost(self) -> float:
        return self.ewma_s * (self.pending + 1)

    def observe(self, rtt_s: float, now: float, decay_s: float) -> None:
        if rtt_s > self.ewma_s or self.last_sample == 0.0:
            self.ewma_s = rtt_s  # peak: a slow answer counts at once
        else:
            weight = math.exp(-(now - self.last_sample) / decay_s)
            self.ewma_s = self.ewma_s * weight + rtt_s * (1 - weight)
        self.last_sample = now


@dataclass
class RetryBudget:
    ratio: float = 0.2
    min_per_s: float = 3.0
    window_s: float = 10.0
    _requests: deque[float] = field(default_factory=deque)
    _retries: deque[float] = field(default_factory=deque)

    def _trim(self, now: float) -> None:
        for queue in (self._requests, self._retries):
            while queue and now - queue[0] > self.window_s:
                queue.popleft()

    def request(self, now: float) -> None:
        self._requests.append(now)

    def try_retry(self, now: float) -> bool:
        self._trim(now)
        allowed = self.ratio * len(self._requests) + self.min_per_s * self.window_s
        if len(self._retries) < allowed:
            self._retries.append(now)
            return True
        return False


class BalancedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        backends: Sequence[str],
        *,
        policy: Policy = "p2c_ewma",
        decay_s: float = 10.0,
        eject_after: int = 5,
        base_ejection_s: float = 30.0,
        max_ejection_s: float = 300.0,
        max_ejected_share: float = 0.1,
        max_attempts: int = 2,
        failure_penalty_s: float = 1.0,
        budget: RetryBudget | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        inner: httpx.AsyncBaseTransport | None = None,
        health_path: str = "/health/live",
        open_s: float = 5.0,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """`breaker` defaults to one that opens for `open_s` when ≥ 50 % of at least 20
        calls in 10 s failed."""
        if not backends:
            raise InvalidValue("backends", list(backends), "at least one backend URL")
        self.backends = [Backend(httpx.URL(u)) for u in backends]
        self.policy = policy
        self.decay_s = decay_s
        self.eject_after = eject_after
        self.base_ejection_s = base_ejection_s
        self.max_ejection_s = max_ejection_s
        self.max_ejected = max(1, int(len(self.backends) * max_ejected_share))
        self.max_attempts = max_attempts
        self.failure_penalty_s = failure_penalty_s
        self.budget = budget or RetryBudget()
        self.clock = clock
        self.inner = inner or httpx.AsyncHTTPTransport()
        self._rng = random.Random(seed)
        self._next = 0
        self.retries = 0
        self.requests = 0
        self.health_path = health_path
        self.breaker = breaker or CircuitBreaker(
            FailureRate(ratio=0.5, min_calls=20, window_s=10.0), cooldown_s=open_s, clock=clock
        )
        self._checker: BackgroundLoop | None = None

    # -- choice --------------------------------------------------------------------

    def _available(self, now: float, avoid: Backend | None) -> list[Backend]:
        live = [b for b in self.backends if b.healthy and b.ejected_until <= now and b is not avoid]
        return live or [b for b in self.backends if b is not avoid] or self.backends

    def pick(self, avoid: Backend | None = None) -> Backend:
        now = self.clock()
        candidates = self._available(now, avoid)
        if self.policy == "round_robin":
            self._next = (self._next + 1) % len(candidates)
            return candidates[self._next]
        if self.policy == "least_request":
            a, b = self._two(candidates)
            return a if a.pending <= b.pending else b
        a, b = self._two(candidates)
        return a if a.cost() <= b.cost() else b

    def _two(self, candidates: list[Backend]) -> tuple[Backend, Backend]:
        if len(candidates) == 1:
            return candidates[0], candidates[0]
        a, b = self._rng.sample(candidates, 2)
        return a, b

    def circuit_open(self) -> bool:
        """Whether calls are paused now (open, or half-open waiting on its probe)."""
        return self.breaker.state is not BreakerState.CLOSED

    # -- active health checks --------------------------------------------------------

    async def check_health(self, timeout_s: float = 1.0) -> None:
        """Probe every backend once (`health_path`); 3 failures out, 1 success back in."""

        async def probe(backend: Backend) -> None:
            request = httpx.Request("GET", backend.url.copy_with(path=self.health_path),
                                    extensions={"timeout": {"connect": timeout_s, "read": timeout_s,
                                                            "write": timeout_s, "pool": timeout_s}})  # fmt: skip
            try:
                response = await self.inner.handle_async_request(request)
                await response.aread()
                ok = response.status_code < 500
            except httpx.TransportError:
                ok = False
            backend.failed_probes = 0 if ok else backend.failed_probes + 1
            backend.healthy = ok or (backend.healthy and backend.failed_probes < 3)

        await asyncio.gather(*(probe(b) for b in self.backends))

    def start_health_checks(self, interval_s: float = 5.0) -> None:
        async def loop() -> None:
            while True:
                await self.check_health()
                await asyncio.sleep(interval_s)

        if self._checker is None:
            self._checker = BackgroundLoop(loop, "wedsync-perf-balancer-health")
            self._checker.start()

    def _record(self, backend: Backend, rtt_s: float, failed: bool) -> None:
        now = self.clock()
        if failed:
            self.breaker.failure()
        else:
            self.breaker.success()
        # A failure counts as a slow answer: a host that fails fast must not look like
        # the fastest one and draw the traffic.
        backend.observe(max(rtt_s, self.failure_penalty_s) if failed else rtt_s, now, self.decay_s)
        if not failed:
            backend.consecutive_failures = 0
            return
        backend.consecutive_failures += 1
        ejected_now = sum(1 for b in self.backends if b.ejected_until > now)
        if backend.consecutive_failures >= self.eject_after and ejected_now < self.max_ejected:
            backend.ejections += 1
            backend.ejected_until = now + min(
                self.max_ejection_s, self.base_ejection_s * backend.ejections
            )
            backend.consecutive_failures = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        now = self.clock()
        if not self.breaker.allow():
            raise CircuitOpen("the upstream is failing; calls are paused", request=request)
        self.budget.request(now)
        tried: Backend | None = None
        attempt = 0
        while True:
            backend = self.pick(avoid=tried)
            tried = backend
            request.url = request.url.copy_with(
                scheme=backend.url.scheme, host=backend.url.host, port=backend.url.port
            )
            backend.pending += 1
            started = self.clock()
            response: httpx.Response | None = None
            error: httpx.TransportError | None = None
            try:
                response = await self.inner.handle_async_request(request)
            except httpx.TransportError as exc:
                error = exc
            finally:
                backend.pending -= 1
            failed = error is not None or (response is not None and response.status_code >= 500)
            self._record(backend, self.clock() - started, failed)
            attempt += 1
            if (
                not failed
                or attempt >= self.max_attempts
                or not self.budget.try_retry(self.clock())
            ):
                if error is not None:
                    raise error
                assert response is not None
                return response
            self.retries += 1
            if response is not None:
                await response.aclose()

    async def aclose(self) -> None:
        if self._checker is not None:
            await self._checker.stop()
        await self.inner.aclose()
