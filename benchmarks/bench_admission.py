"""Admission control on the reference API far past its capacity.

One server process (one worker) on a seeded database (scale 0.05), the per-key rate
limit lifted. Load comes from Debian's `wrk` (C: the Python driver, sharing the 2 cores,
could not overload the server — it saturated first): 256 connections replaying the
wedding-day mix closed-loop for 15 s, while a second wrk with 4 connections sends only
critical requests and measures what a supplier on site waits (its p95 and errors). The
server's own figures give what was shed per class. Admission off vs on, two rounds each,
interleaved.

Run: `make bench-admission` (needs `wrk`; DATABASE_URL, else the embedded PostgreSQL).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import api_server, machine, seeded_wedding_saturday, versions, write_result
from benchmarks._wrk import have_wrk, run_wrk, write_script
from wedsync_perf.calendar import Regime
from wedsync_perf.priorities import PriorityClass
from wedsync_perf.traffic import MIX_BY_REGIME, ClassMix

WRK_SECONDS = 15.0


async def overload_with_wrk(dsn: str, workload: Any, admission: bool) -> dict[str, Any]:
    """wrk drives the wedding-day mix closed-loop with 256 connections (far past what one
    worker serves) while a second wrk, 4 connections of critical requests only, measures
    what a supplier on site waits; the server's own figures say what was shed."""
    mix = MIX_BY_REGIME[Regime.WEDDING_DAY]
    background = write_script(workload, mix)
    probe = write_script(workload, ClassMix({PriorityClass.CRITICAL: 1.0}), seed=9)
    token = secrets.token_urlsafe(8)
    env = {"WEDSYNC_API_ADMISSION": str(admission).lower()}
    async with api_server(dsn, env, token) as client:
        base = str(client.base_url)
        load, measured = await asyncio.gather(
            asyncio.to_thread(run_wrk, base, background, connections=256, seconds=WRK_SECONDS),
            asyncio.to_thread(run_wrk, base, probe, connections=4, seconds=WRK_SECONDS),
        )
        view = (await client.get("/perf/stats", params={"window": WRK_SECONDS + 10},
                                 headers={"Authorization": f"Bearer {token}"})).json()  # fmt: skip
    classes = {c["priority"]: c for c in view["classes"]}
    bulk = classes.get("bulk", {"count": 0, "errors": 0})
    return {
        "background_rps": load.get("rps"),
        "critical_probe": measured,
        "critical_success_rate": round(1 - (measured.get("status_errors", 0) + measured.get("timeouts", 0))
                                       / max(measured.get("requests", 1), 1), 4),
        "bulk_shed_rate": round(bulk["errors"] / bulk["count"], 4) if bulk["count"] else None,
        "server_classes": {k: {"count": v["count"], "errors": v["errors"], "p95_ms": v["p95_ms"]}
                           for k, v in classes.items()},
        "admission": view.get("admission"),
    }  # fmt: skip


async def main() -> None:
    if not have_wrk():
        raise SystemExit("bench-admission needs wrk (Debian package wrk): apt-get install wrk")
    async with seeded_wedding_saturday("wedsync_bench_admission", 0.05) as (dsn, workload):
        results: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
        for _ in range(2):
            for mode in ("off", "on"):
                results[mode].append(await overload_with_wrk(dsn, workload, mode == "on"))
                print(
                    mode,
                    json.dumps(
                        {k: v for k, v in results[mode][-1].items() if k != "server_classes"}
                    ),
                    flush=True,
                )

    def mean(mode: str, pick: Any) -> float | None:
        values = [pick(r) for r in results[mode]]
        values = [v for v in values if v is not None]
        return round(sum(values) / len(values), 3) if values else None

    figures: dict[str, Any] = {
        "critical_p95_ms": {m: mean(m, lambda r: r["critical_probe"].get("p95_ms")) for m in ("off", "on")},
        "critical_success_rate": {m: mean(m, lambda r: r["critical_success_rate"]) for m in ("off", "on")},
        "bulk_shed_rate": {m: mean(m, lambda r: r["bulk_shed_rate"]) for m in ("off", "on")},
        "background_rps": {m: mean(m, lambda r: r["background_rps"]) for m in ("off", "on")},
        "runs": results,
        "load": {"tool": "wrk 4.1 (Debian)", "background_connections": 256, "probe_connections": 4,
                 "seconds": WRK_SECONDS},
        "versions": versions("httpx", "uvicorn", "fastapi"),
        "machine": machine(),
    }  # fmt: skip
    path = write_result("admission", figures)
    for mode in ("off", "on"):
        print(f"admission {mode:3s}: critical p95 {figures['critical_p95_ms'][mode]} ms, success"
              f" {figures['critical_success_rate'][mode]}; bulk shed {figures['bulk_shed_rate'][mode]};"
              f" background {figures['background_rps'][mode]} req/s")  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
