"""The headline: how much more wedding-day load the reference API carries with the
performance layer than without it.

One server process (one worker) on a seeded database (scale 0.2), the per-key rate limit
lifted, `WEDSYNC_API_LAYER=off` (no cache, no pool lanes, no admission control; monitoring
stays) vs on (the layer, the day's cache warmed before serving as a deployment would).
An open-loop driver that schedules arrivals by the clock (no coordinated omission: a
late answer does not delay the next request) offers the wedding-Saturday mix at rising
rates, 8 s each; the result is the highest rate at which the critical class's p95 stays
under 100 ms, client-side (what a supplier on site sees) and server-side (the sketches).

The driver shares the 2 cores with the server: a rate it could not send (less than 90 %
of what was offered) ends the ramp and is reported as such.

Run: `make bench-e2e` (DATABASE_URL, else the embedded PostgreSQL).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import api_server, machine, seeded_wedding_saturday, versions, write_result
from wedsync_api.workload import WeddingSaturday
from wedsync_perf.calendar import Regime
from wedsync_perf.loadgen.driver import drive
from wedsync_perf.loadgen.stats import LoadStats
from wedsync_perf.priorities import PriorityClass
from wedsync_perf.traffic import MIX_BY_REGIME

RATES = (50, 100, 200, 300, 400, 500, 600, 800, 1000, 1200)
STEP_S = 8.0
TARGET_MS = 100.0


async def ramp(dsn: str, workload: WeddingSaturday, layer: str) -> list[dict[str, Any]]:
    token = secrets.token_urlsafe(8)
    env = {"WEDSYNC_API_LAYER": layer}
    if layer == "on":
        env["WEDSYNC_API_WARM_DATES"] = workload.day.isoformat()
    steps: list[dict[str, Any]] = []
    async with api_server(dsn, env, token) as client:
        mix = MIX_BY_REGIME[Regime.WEDDING_DAY]
        for rate in RATES:
            stats = LoadStats()
            await drive(client, workload, mix, rps=rate, duration_s=STEP_S, stats=stats,
                        rng=random.Random(rate), max_in_flight=512, drain_s=10)  # fmt: skip
            critical = stats.by_class().get(PriorityClass.CRITICAL)
            view = (await client.get("/perf/stats", params={"window": STEP_S + 2},
                                     headers={"Authorization": f"Bearer {token}"})).json()  # fmt: skip
            server_p95 = next(
                (c["p95_ms"] for c in view["classes"] if c["priority"] == "critical"), None
            )
            sent = sum(s.count for s in stats.endpoints.values()) / STEP_S
            step = {
                "offered_rps": rate,
                "sent_rps": round(sent, 1),
                "critical_p95_ms": round(critical.quantile_ms(0.95) or 0, 2) if critical else None,
                "critical_success": round(1 - critical.errors / critical.count, 4) if critical and critical.count else None,
                "server_critical_p95_ms": server_p95,
                "dropped": stats.dropped,
            }  # fmt: skip
            steps.append(step)
            print(layer, step, flush=True)
            if sent < 0.9 * rate or (step["critical_p95_ms"] or 0) > 4 * TARGET_MS:
                break
    return steps


def best(steps: list[dict[str, Any]], key: str) -> float:
    ok = [s["offered_rps"] for s in steps
          if s[key] is not None and s[key] < TARGET_MS and s["sent_rps"] >= 0.9 * s["offered_rps"]
          and (s["critical_success"] or 0) >= 0.99]  # fmt: skip
    return max(ok, default=0)


async def main() -> None:
    async with seeded_wedding_saturday("wedsync_bench_e2e", 0.2) as (dsn, workload):
        runs = {layer: await ramp(dsn, workload, layer) for layer in ("off", "on")}
    figures = {
        "max_rps_at_critical_p95_100ms": {f"layer_{k}": best(v, "critical_p95_ms") for k, v in runs.items()},
        "max_rps_at_server_critical_p95_100ms": {f"layer_{k}": best(v, "server_critical_p95_ms") for k, v in runs.items()},
        "steps": runs,
        "step_seconds": STEP_S,
        "versions": versions("httpx", "uvicorn", "fastapi", "asyncpg"),
        "machine": machine(),
    }  # fmt: skip
    off, on = (figures["max_rps_at_critical_p95_100ms"][k] for k in ("layer_off", "layer_on"))
    figures["ratio"] = round(on / off, 2) if off else None
    path = write_result("e2e", figures)
    print(f"highest rate with critical p95 < 100 ms (client): off {off}, on {on}"
          f" (ratio {figures['ratio']}); server-side {figures['max_rps_at_server_critical_p95_100ms']}; wrote {path}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
