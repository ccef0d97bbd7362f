"""Admission control on the reference API at three times its capacity.

One server process (one worker) on a seeded database (scale 0.05), the per-key rate
limit lifted. First its capacity: Debian's `wrk`, 16 connections closed-loop on the
wedding-Saturday mix, the best of three 5 s runs, gives the requests per second it
completes when saturated.
Then 3x that, open-loop, from `constant_rate` (arrivals by the clock, latency timed from
when each request was due — no coordinated omission): critical requests (suppliers on
site) at 30 % of capacity — a Saturday's critical traffic fits the capacity it was sized
for — and standard and bulk work (89 : 11, the wedding-day proportions) making up the
other 270 %: the busy season plus an import job. 15 s per run, admission off vs on,
two rounds interleaved. A request unanswered 5 s after it was due is a failure.

Run: `make bench-admission` (needs `wrk`; DATABASE_URL, else the embedded PostgreSQL).
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import api_server, machine, seeded_wedding_saturday, versions, write_result
from benchmarks._wrk import have_wrk, run_wrk, write_script
from wedsync_perf.calendar import Regime
from wedsync_perf.loadgen.constant_rate import constant_rate, encode
from wedsync_perf.loadgen.stats import LoadStats
from wedsync_perf.monitoring.client import fetch_stats_async
from wedsync_perf.priorities import PriorityClass
from wedsync_perf.traffic import MIX_BY_REGIME, ClassMix

RUN_S = 15.0
OVERLOAD = 3.0
CRITICAL_SHARE_OF_CAPACITY = 0.3
NON_CRITICAL = ClassMix({PriorityClass.STANDARD: 0.89, PriorityClass.BULK: 0.11})


async def capacity(dsn: str, workload: Any) -> float:
    script = write_script(workload, MIX_BY_REGIME[Regime.WEDDING_DAY])
    async with api_server(dsn, {"WEDSYNC_API_ADMISSION": "false"}, "t") as client:
        base = str(client.base_url)
        await asyncio.to_thread(run_wrk, base, script, connections=16, seconds=3)  # warm up
        # The best of three: a noisy neighbour on this shared machine can only lower a
        # reading, and a low capacity would make "3x" a lighter load than it says.
        rates = [(await asyncio.to_thread(run_wrk, base, script, connections=16, seconds=5))["rps"]
                 for _ in range(3)]  # fmt: skip
    return float(max(rates))


async def overload(dsn: str, workload: Any, admission: bool, cap: float) -> dict[str, Any]:
    token = secrets.token_urlsafe(8)
    env = {"WEDSYNC_API_ADMISSION": str(admission).lower()}
    rng = random.Random(7)
    async with api_server(dsn, env, token) as client:
        port = client.base_url.port
        host = f"127.0.0.1:{port}"
        critical = [
            encode(workload.next_request(PriorityClass.CRITICAL, rng), host) for _ in range(3000)
        ]
        other = [
            encode(workload.next_request(NON_CRITICAL.pick(rng), rng), host) for _ in range(6000)
        ]
        stats = LoadStats()
        critical_rps = CRITICAL_SHARE_OF_CAPACITY * cap
        other_rps = OVERLOAD * cap - critical_rps
        await asyncio.gather(
            constant_rate(
                "127.0.0.1", port, critical, rps=critical_rps, duration_s=RUN_S, stats=stats
            ),
            constant_rate("127.0.0.1", port, other, rps=other_rps, duration_s=RUN_S, stats=stats),
        )
        view = await fetch_stats_async(client, token, RUN_S + 10)
    by_class = stats.by_class()

    def summary(p: PriorityClass) -> dict[str, Any]:
        e = by_class[p]
        return {"sent": e.count, "ok": e.count - e.errors, "statuses": dict(sorted(e.statuses.items())),
                "p50_ms": round(e.quantile_ms(0.5) or 0, 1), "p95_ms": round(e.quantile_ms(0.95) or 0, 1)}  # fmt: skip

    classes = {p.value: summary(p) for p in PriorityClass if p in by_class}
    bulk = by_class[PriorityClass.BULK]
    return {
        "offered_rps": round(OVERLOAD * cap, 1),
        "classes": classes,
        "critical_p95_ms": classes["critical"]["p95_ms"],
        "critical_success_rate": round(classes["critical"]["ok"] / classes["critical"]["sent"], 4),
        "bulk_shed_rate": round(bulk.statuses.get(503, 0) / bulk.count, 4),
        "standard_goodput_rps": round(classes["standard"]["ok"] / RUN_S, 1),
        "server_classes": {c["priority"]: {"count": c["count"], "p95_ms": c["p95_ms"]} for c in view["classes"]},
        "admission": view.get("admission"),
    }  # fmt: skip


async def main() -> None:
    if not have_wrk():
        raise SystemExit("bench-admission needs wrk (Debian package wrk): apt-get install wrk")
    async with seeded_wedding_saturday("wedsync_bench_admission", 0.05) as (dsn, workload):
        cap = await capacity(dsn, workload)
        print(f"capacity (wrk, 16 connections, closed loop): {cap:.0f} req/s", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
        for _ in range(2):
            for mode in ("off", "on"):
                runs[mode].append(await overload(dsn, workload, mode == "on", cap))
                brief = {k: v for k, v in runs[mode][-1].items() if k in (
                    "critical_p95_ms", "critical_success_rate", "bulk_shed_rate", "standard_goodput_rps")}  # fmt: skip
                print(mode, json.dumps(brief), flush=True)

    def mean(mode: str, key: str) -> float:
        return round(statistics.fmean(r[key] for r in runs[mode]), 4)

    keys = ("critical_p95_ms", "critical_success_rate", "bulk_shed_rate", "standard_goodput_rps")
    figures: dict[str, Any] = {k: {m: mean(m, k) for m in ("off", "on")} for k in keys}
    figures.update({
        "capacity_rps": round(cap, 1),
        "offered_rps": round(OVERLOAD * cap, 1),
        "critical_offered_rps": round(CRITICAL_SHARE_OF_CAPACITY * cap, 1),
        "runs": runs,
        "load": {"capacity": "wrk 4.1 (Debian), 16 connections, best of 3 x 5 s",
                 "overload": f"wedsync_perf.loadgen.constant_rate, {RUN_S:g} s, timeout 5 s"},
        "versions": versions("uvicorn", "fastapi", "asyncpg", "uvloop"),
        "machine": machine(),
    })  # fmt: skip
    path = write_result("admission", figures)
    for mode in ("off", "on"):
        print(f"admission {mode:3s}: critical p95 {figures['critical_p95_ms'][mode]} ms, success"
              f" {figures['critical_success_rate'][mode]}; bulk shed {figures['bulk_shed_rate'][mode]};"
              f" standard answered {figures['standard_goodput_rps'][mode]} req/s")  # fmt: skip
    off, on = figures["critical_p95_ms"]["off"], figures["critical_p95_ms"]["on"]
    print(f"critical p95 off/on: {off / on:.1f}x; wrote {path}")


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
