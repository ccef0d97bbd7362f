"""A long day at season load: does anything grow? The layer beside the plain app
(`benchmarks/_plain.py`), both served at once on the same machine, database and Redis
(each its own key prefix), each offered the wedding-Saturday mix open-loop at
`RPS` for `SOAK_MINUTES` (default 30). Every minute, per server: resident memory,
open file descriptors, TCP connections, answers by status and their p95. Growth is
reported from the end of the first minute (imports, first fills and pools warming up
are not a leak) to the end.

Run: `make bench-soak` (DATABASE_URL and REDIS_URL, else embedded ones);
`SOAK_MINUTES=5 make bench-soak` for a short look.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (
    factory_server,
    machine,
    seeded_wedding_saturday,
    versions,
    write_result,
)
from benchmarks._timeline import TimedStats, Timeline
from wedsync_perf.calendar import Regime
from wedsync_perf.embedded import embedded_redis
from wedsync_perf.loadgen.constant_rate import constant_rate, encode
from wedsync_perf.traffic import MIX_BY_REGIME

RPS = 150
SOAK_MINUTES = int(os.environ.get("SOAK_MINUTES", "30"))
VARIANTS = {
    "layer": ("wedsync_api.app:create_app", {"WEDSYNC_API_LAYER": "on"}),
    "plain": ("benchmarks._plain:create_plain_app", {"WEDSYNC_API_LAYER": "off"}),
}


def sample(process: psutil.Process) -> dict[str, float]:
    """The server process and its children (uvicorn may fork workers)."""
    procs = [process, *process.children(recursive=True)]
    return {
        "rss_mb": round(sum(p.memory_info().rss for p in procs) / 2**20, 1),
        "fds": sum(p.num_fds() for p in procs),
        "tcp": sum(len(p.net_connections(kind="tcp")) for p in procs),
    }


async def soak(name: str, dsn: str, redis_url: str, day: str, workload: Any) -> dict[str, Any]:
    factory, env = VARIANTS[name]
    env = {**env, "REDIS_URL": redis_url, "WEDSYNC_PERF_REDIS_PREFIX": f"soak-{name}"}
    if name == "layer":
        env["WEDSYNC_API_WARM_DATES"] = day
    async with factory_server(factory, dsn, env) as (port, server):
        rng = random.Random(3)
        mix = MIX_BY_REGIME[Regime.WEDDING_DAY]
        requests = [encode(workload.next_request(mix.pick(rng), rng), f"127.0.0.1:{port}")
                    for _ in range(20_000)]  # fmt: skip
        process = psutil.Process(server.pid)
        timeline = Timeline()
        load = asyncio.create_task(constant_rate(
            "127.0.0.1", port, requests, rps=RPS, duration_s=SOAK_MINUTES * 60,
            stats=TimedStats(timeline)))  # fmt: skip
        samples = [{"minute": 0, **sample(process)}]
        for minute in range(1, SOAK_MINUTES + 1):
            await asyncio.sleep(60)
            samples.append({"minute": minute, **sample(process)})
            print(name, samples[-1], flush=True)
        await load
    minutes = timeline.seconds(60)
    for row, answers in zip(samples[1:], minutes, strict=False):
        row.update(statuses=answers["statuses"], failed=answers["failed"],
                   p95_ms=answers["p95_ms"])  # fmt: skip
    first, last = samples[1], samples[-1]
    return {
        "samples": samples,
        "growth_after_first_minute": {
            k: round(last[k] - first[k], 1) for k in ("rss_mb", "fds", "tcp")
        },
        "failed": sum(m["failed"] for m in minutes),
        "answers": sum(sum(m["statuses"].values()) for m in minutes),
    }


async def main() -> None:
    redis_url = os.environ.get("REDIS_URL") or embedded_redis(Path(".wedsync-soak")).url
    async with seeded_wedding_saturday("wedsync_bench_soak", 0.2) as (dsn, workload):
        day = workload.day.isoformat()
        layer, plain = await asyncio.gather(
            soak("layer", dsn, redis_url, day, workload),
            soak("plain", dsn, redis_url, day, workload),
        )
    figures = {
        "layer": layer,
        "plain": plain,
        "rps_each": RPS,
        "minutes": SOAK_MINUTES,
        "versions": versions("uvicorn", "fastapi", "asyncpg", "redis", "limits"),
        "machine": machine(),
    }
    path = write_result("soak", figures)
    for name, result in (("layer", layer), ("plain", plain)):
        print(f"{name}: {result['answers']:,} answers, {result['failed']:,} failed; growth after"
              f" the first minute {result['growth_after_first_minute']}")  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
