"""The open-loop driver: Poisson arrivals at a target rate, a class drawn per arrival
from a `ClassMix`, the request itself built by a `Workload`."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from wedsync_perf.errors import InvalidValue
from wedsync_perf.loadgen.stats import LoadStats
from wedsync_perf.priorities import PriorityClass
from wedsync_perf.traffic import ClassMix

__all__ = ["RequestSpec", "Workload", "closed_loop", "drive"]

# Status the driver records when the request never got an answer (timeout, refused).
TRANSPORT_ERROR = 0


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One request to send. `endpoint` is the label results are grouped by: use the
    route template ("GET /weddings/{id}"), never the concrete path."""

    endpoint: str
    priority: PriorityClass
    method: str
    path: str
    expected: frozenset[int] = frozenset({200})
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    on_response: Callable[[httpx.Response], None] | None = None


class Workload(Protocol):
    def next_request(self, priority: PriorityClass, rng: random.Random) -> RequestSpec:
        """Build the next request of class `priority`."""
        ...


async def _send(client: httpx.AsyncClient, spec: RequestSpec, stats: LoadStats) -> None:
    started = time.perf_counter()
    try:
        response = await client.request(
            spec.method, spec.path, headers=spec.headers, json=spec.json, content=spec.content
        )
        status = response.status_code
    except httpx.HTTPError:
        response, status = None, TRANSPORT_ERROR
    latency = time.perf_counter() - started
    stats.endpoint(spec.endpoint, spec.priority).record(latency, status, status in spec.expected)
    if response is not None and spec.on_response is not None and status in spec.expected:
        spec.on_response(response)


async def drive(
    client: httpx.AsyncClient,
    workload: Workload,
    mix: ClassMix,
    *,
    rps: float,
    duration_s: float | None,
    stats: LoadStats,
    rng: random.Random,
    stop: asyncio.Event | None = None,
    max_in_flight: int = 512,
    drain_s: float = 5.0,
) -> LoadStats:
    """Send requests until `duration_s` passes or `stop` is set, then wait up to `drain_s`
    for requests still in flight. Arrivals beyond `max_in_flight` are counted in
    `stats.dropped`, not queued, so the schedule never silently stretches."""
    if rps <= 0:
        raise InvalidValue("rps", rps, "a positive request rate")
    stop = stop or asyncio.Event()
    in_flight: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    start = loop.time()
    next_at = start
    while not stop.is_set():
        next_at += rng.expovariate(rps)
        if duration_s is not None and next_at - start >= duration_s:
            break
        delay = next_at - loop.time()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                break
            except TimeoutError:
                pass
        if len(in_flight) >= max_in_flight:
            stats.dropped += 1
            continue
        spec = workload.next_request(mix.pick(rng), rng)
        task = asyncio.create_task(_send(client, spec, stats))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    stats.finished_at = time.monotonic()
    if in_flight:
        _, pending = await asyncio.wait(in_flight, timeout=drain_s)
        for task in pending:
            task.cancel()
    return stats


async def closed_loop(
    client: httpx.AsyncClient,
    workload: Workload,
    mix: ClassMix,
    *,
    concurrency: int,
    duration_s: float,
    rng: random.Random,
) -> LoadStats:
    """`concurrency` clients, each sending its next request as soon as the last one
    answered, for `duration_s`: throughput at a fixed concurrency, what the Universal
    Scalability Law is fitted to (an open-loop driver, `drive`, measures latency)."""
    if concurrency < 1:
        raise InvalidValue("concurrency", concurrency, "at least 1 client")
    if duration_s <= 0:
        raise InvalidValue("duration_s", duration_s, "a positive number of seconds")
    stats = LoadStats()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration_s

    async def client_loop() -> None:
        while loop.time() < deadline:
            await _send(client, workload.next_request(mix.pick(rng), rng), stats)

    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    stats.finished_at = time.monotonic()
    return stats
