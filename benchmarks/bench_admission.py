"""Admission control on the reference API at about 3x its capacity.

One server process (one worker) on a seeded database (scale 0.05), the per-key rate
limit lifted; its capacity measured closed-loop first (8 clients, wedding-day mix);
then the same open-loop arrival schedule at 3x that rate for 12 s, with admission
control off and on (two rounds, interleaved). Per class: success rate (the expected
status), p95 of successful requests (client-side, from DDSketch), and how much bulk
work was shed (503).

Run: `make bench-admission` (DATABASE_URL, else the embedded PostgreSQL).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import api_server, machine, seeded_wedding_saturday, versions, write_result
from wedsync_perf.calendar import Regime
from wedsync_perf.loadgen.driver import closed_loop, drive
from wedsync_perf.loadgen.stats import LoadStats
from wedsync_perf.traffic import MIX_BY_REGIME

SECONDS = 12.0
OVERLOAD = 3.0


async def run_server(dsn: str, admission: bool, body: Any) -> Any:
    env = {"WEDSYNC_API_ADMISSION": str(admission).lower()}
    async with api_server(dsn, env, secrets.token_urlsafe(8)) as client:
        return await body(client)


def per_class(stats: LoadStats) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for priority, s in stats.by_class().items():
        shed = s.statuses.get(503, 0)
        out[priority.value] = {
            "requests": s.count,
            "success_rate": round((s.count - s.errors) / s.count, 4) if s.count else None,
            "p95_ms": round(s.quantile_ms(0.95) or 0, 2),
            "shed_rate": round(shed / s.count, 4) if s.count else None,
        }
    return out


async def main() -> None:
    async with seeded_wedding_saturday("wedsync_bench_admission", 0.05) as (dsn, workload):
        mix = MIX_BY_REGIME[Regime.WEDDING_DAY]

        async def capacity(client: httpx.AsyncClient) -> float:
            rng = random.Random(1)
            await closed_loop(client, workload, mix, concurrency=4, duration_s=1, rng=rng)
            stats = await closed_loop(client, workload, mix, concurrency=8, duration_s=3, rng=rng)
            return sum(s.count for s in stats.endpoints.values()) / stats.elapsed_s()

        cap = await run_server(dsn, admission=False, body=capacity)
        rate = cap * OVERLOAD
        results: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
        for _ in range(2):
            for mode in ("off", "on"):

                async def overload(client: httpx.AsyncClient) -> dict[str, Any]:
                    stats = LoadStats()
                    await drive(client, workload, mix, rps=rate, duration_s=SECONDS, stats=stats,
                                rng=random.Random(7), max_in_flight=1024, drain_s=15)  # fmt: skip
                    sent = sum(s.count for s in stats.endpoints.values())
                    return {"classes": per_class(stats), "sent_rps": round(sent / SECONDS, 1),
                            "dropped_by_client": stats.dropped}  # fmt: skip

                started = time.perf_counter()
                outcome = await run_server(dsn, admission=mode == "on", body=overload)
                outcome["seconds"] = round(time.perf_counter() - started, 1)
                results[mode].append(outcome)

    def mean(mode: str, cls: str, key: str) -> float | None:
        values = [r["classes"].get(cls, {}).get(key) for r in results[mode]]
        values = [v for v in values if v is not None]
        return round(sum(values) / len(values), 4) if values else None

    figures = {
        "capacity_rps": round(cap, 1),
        "offered_rps": round(rate, 1),
        "critical_p95_ms": {m: mean(m, "critical", "p95_ms") for m in ("off", "on")},
        "critical_success_rate": {m: mean(m, "critical", "success_rate") for m in ("off", "on")},
        "standard_success_rate": {m: mean(m, "standard", "success_rate") for m in ("off", "on")},
        "bulk_shed_rate": {
            "on": mean("on", "bulk", "shed_rate"),
            "off": mean("off", "bulk", "shed_rate"),
        },
        "runs": results,
        "versions": versions("httpx", "uvicorn", "fastapi"),
        "machine": machine(),
    }
    path = write_result("admission", figures)
    print(f"capacity {cap:.0f} req/s; offered {rate:.0f} req/s (sent: "
          f"{[r['sent_rps'] for r in results['off'] + results['on']]})")  # fmt: skip
    for mode in ("off", "on"):
        print(f"admission {mode:3s}: critical p95 {figures['critical_p95_ms'][mode]} ms, success"
              f" {figures['critical_success_rate'][mode]}; standard success"
              f" {figures['standard_success_rate'][mode]}; bulk shed {figures['bulk_shed_rate'][mode]}")  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
