"""Per-request overhead of monitoring middlewares, in-process (direct ASGI calls, no
HTTP server), on a FastAPI app with three routes and varying path IDs.

Variants, interleaved in shuffled order every round: the bare app, ours (the classifier
and monitoring), prometheus-fastapi-instrumentator, starlette-exporter and OpenTelemetry's
ASGI middleware (SDK with in-memory exporters, send/receive spans off). Reports the median
µs per request of each and the µs each adds over bare. Run: `make bench-middleware`.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, versions, write_result
from wedsync_perf.monitoring import MonitoringMiddleware, Recorder
from wedsync_perf.pipeline import ClassifierMiddleware, RouteTable
from wedsync_perf.testing import call_asgi

REQUESTS = 4000
ROUNDS = 9


def base_app() -> FastAPI:
    app = FastAPI()

    @app.get("/users/{user_id}")
    async def user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    @app.get("/weddings/{wedding_id}/timeline")
    async def timeline(wedding_id: int) -> dict[str, Any]:
        return {"wedding_id": wedding_id, "items": []}

    @app.get("/suppliers/search")
    async def search() -> dict[str, list[int]]:
        return {"items": [1, 2, 3]}

    return app


def bare() -> Any:
    return base_app()


def ours() -> Any:
    """Monitoring as the pipeline runs it: behind the classifier's one route match."""
    app = base_app()
    app.add_middleware(MonitoringMiddleware, recorder=Recorder())
    app.add_middleware(ClassifierMiddleware, table=RouteTable.compile(app.routes))
    return app


def pfi() -> Any:
    from prometheus_client import CollectorRegistry
    from prometheus_fastapi_instrumentator import Instrumentator

    app = base_app()
    Instrumentator(registry=CollectorRegistry()).instrument(app)
    return app


def starlette_exporter() -> Any:
    from starlette_exporter import PrometheusMiddleware

    app = base_app()
    app.add_middleware(PrometheusMiddleware, group_paths=True, app_name="bench")
    return app


def opentelemetry() -> Any:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    tracer_provider = TracerProvider()
    exporter = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    app = base_app()
    wrapped = OpenTelemetryMiddleware(
        app,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        exclude_spans=["receive", "send"],
    )
    # Keep memory flat across rounds: the exporter would hold every span.
    wrapped._bench_exporter = exporter  # type: ignore[attr-defined]
    return wrapped


VARIANTS: dict[str, Callable[[], Any]] = {
    "bare": bare,
    "wedsync_perf": ours,
    "prometheus_fastapi_instrumentator": pfi,
    "starlette_exporter": starlette_exporter,
    "opentelemetry": opentelemetry,
}


async def run(app: Any, paths: list[tuple[str, bytes]]) -> float:
    started = time.perf_counter()
    for path, query in paths:
        await call_asgi(app, "GET", path, query_string=query)
    elapsed = time.perf_counter() - started
    exporter = getattr(app, "_bench_exporter", None)
    if exporter is not None:
        exporter.clear()
    return elapsed / len(paths) * 1e6


def record_cost() -> float:
    recorder = Recorder()
    n = 200_000
    started = time.perf_counter()
    for i in range(n):
        recorder.record(
            "/weddings/{wedding_id}/timeline", "GET", 200, "critical", 0.004 + (i % 50) * 1e-4, 512
        )
    loop_only = time.perf_counter()
    for i in range(n):
        _ = 0.004 + (i % 50) * 1e-4
    done = time.perf_counter()
    return ((loop_only - started) - (done - loop_only)) / n * 1e6


async def main() -> None:
    rng = random.Random(1)
    paths = []
    for i in range(REQUESTS):
        kind = i % 3
        if kind == 0:
            paths.append((f"/users/{rng.randrange(10_000)}", b"email=alice%40example.com"))
        elif kind == 1:
            paths.append((f"/weddings/{rng.randrange(10_000)}/timeline", b""))
        else:
            paths.append(("/suppliers/search", b"category=florist&page=2"))
    apps = {name: build() for name, build in VARIANTS.items()}
    for app in apps.values():  # warm-up: route tables, lazy imports, first allocations
        await run(app, paths[:300])
    samples: dict[str, list[float]] = {name: [] for name in apps}
    order = list(apps)
    for round_no in range(ROUNDS):
        rng.shuffle(order)
        for name in order:
            samples[name].append(await run(apps[name], paths))
        print(f"round {round_no + 1}/{ROUNDS} done")
    median = {name: statistics.median(values) for name, values in samples.items()}
    bare_us = median["bare"]
    added = {name: round(median[name] - bare_us, 2) for name in median if name != "bare"}
    peers = {k: v for k, v in added.items() if k != "wedsync_perf"}
    lightest = min(peers, key=lambda k: peers[k])
    figures = {
        "requests_per_round": REQUESTS,
        "rounds": ROUNDS,
        "overhead_us": {"bare_us_per_request": round(bare_us, 2), **added},
        "record_us": round(record_cost(), 3),
        "ratio": {
            f"{peer}_vs_wedsync_perf": round(value / max(added["wedsync_perf"], 1e-9), 1)
            for peer, value in peers.items()
        },
        "lightest_peer": lightest,
        "versions": versions(
            "fastapi",
            "starlette",
            "prometheus-fastapi-instrumentator",
            "starlette-exporter",
            "prometheus-client",
            "opentelemetry-sdk",
            "opentelemetry-instrumentation-asgi",
        ),
        "machine": machine(),
    }
    path = write_result("middleware", figures)
    table = Table(title=f"Middleware overhead, in-process ASGI, median of {ROUNDS} rounds")
    table.add_column("variant")
    table.add_column("µs/request", justify="right")
    table.add_column("added µs", justify="right")
    table.add_column("vs ours", justify="right")
    for name in VARIANTS:
        extra = "" if name == "bare" else f"{added[name]:.1f}"
        ratio = (
            ""
            if name in ("bare", "wedsync_perf")
            else f"{added[name] / added['wedsync_perf']:.1f}x"
        )
        table.add_row(name, f"{median[name]:.1f}", extra, ratio)
    Console().print(table)
    print(f"Recorder.record alone: {figures['record_us']} µs; wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
