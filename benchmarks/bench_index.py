"""Index advice on the seeded database (scale 0.2) with the reference API's read
workload: workload cost (planner) and *measured* workload time with no extra indexes,
with our suggestions, with Dexter's published rule re-implemented (per query, single and
2-column candidates, kept when they cut that query's cost by at least 50 %), and with an
exhaustive oracle over b-tree candidates of width ≤ 2 (up to 3 indexes) in the same
storage budget.

Uses DATABASE_URL, else the embedded PostgreSQL. Run: `make bench-index`.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, server_url, versions, write_result
from wedsync_api.db import migrate
from wedsync_api.seed import SeedPlan, seed
from wedsync_api.workload_sql import reference_workload
from wedsync_perf.database.advisor import Candidate, WorkloadQuery, _WhatIf, advise, candidates
from wedsync_perf.testing import temporary_database

BUDGET = 256 * 1024 * 1024
REPEATS = 30


async def measured_ms(
    conn: asyncpg.Connection, workload: list[WorkloadQuery], indexes: list[Candidate]
) -> float:
    """Weighted workload time with `indexes` really built (then dropped)."""
    names = []
    for i, candidate in enumerate(indexes):
        name = f"bench_ix_{i}"
        await conn.execute(
            f"CREATE INDEX {name} ON {candidate.table} ({', '.join(candidate.columns)})"
        )
        names.append(name)
    await conn.execute("ANALYZE")
    try:
        for query in workload:  # warm the cache and the plan cache
            await conn.fetch(query.sql, *query.args)
        rounds = []
        for _ in range(5):
            total = 0.0
            for query in workload:
                started = time.perf_counter()
                for _ in range(REPEATS):
                    await conn.fetch(query.sql, *query.args)
                total += query.weight * (time.perf_counter() - started) / REPEATS
            rounds.append(total * 1000)
        return statistics.median(rounds)
    finally:
        for name in names:
            await conn.execute(f"DROP INDEX {name}")


async def dexter_rule(conn: asyncpg.Connection, workload: list[WorkloadQuery]) -> list[Candidate]:
    chosen: list[Candidate] = []
    for query in workload:
        whatif = _WhatIf(conn, [query])
        base = await whatif.cost([])
        options = [c for c in candidates(query.sql) if len(c.columns) <= 2]
        best: tuple[float, Candidate] | None = None
        for candidate in options:
            cost = await whatif.cost([candidate])
            if best is None or cost < best[0]:
                best = (cost, candidate)
        if best is not None and best[0] <= 0.5 * base and best[1] not in chosen:
            chosen.append(best[1])
    return chosen


async def oracle(
    conn: asyncpg.Connection, workload: list[WorkloadQuery]
) -> tuple[list[Candidate], int]:
    whatif = _WhatIf(conn, workload)
    pool = sorted({c for q in workload for c in candidates(q.sql) if len(c.columns) <= 2})
    best: tuple[float, list[Candidate]] = (await whatif.cost([]), [])
    for size in (1, 2, 3):
        for combo in itertools.combinations(pool, size):
            cost = await whatif.cost(list(combo))
            if cost < best[0] and sum(whatif.sizes.get(c, 0) for c in combo) <= BUDGET:
                best = (cost, list(combo))
    return best[1], whatif.calls


async def main() -> None:
    async with temporary_database(server_url(), prefix="wedsync_bench_index") as dsn:
        await migrate(dsn)
        conn = await asyncpg.connect(dsn)
        await seed(conn, SeedPlan(scale=0.2, seed=7))
        workload = await reference_workload(conn)
        started = time.perf_counter()
        advice = await advise(conn, workload, budget_bytes=BUDGET)
        ours_s = time.perf_counter() - started
        ours = [s.candidate for s in advice.suggestions]
        dexter = await dexter_rule(conn, workload)
        best, oracle_calls = await oracle(conn, workload)
        costing = _WhatIf(conn, workload)
        relative = {}
        base_cost = await costing.cost([])
        for name, config in (("ours", ours), ("dexter_rule", dexter), ("oracle", best)):
            relative[name] = round(await costing.cost(config) / base_cost, 4)
        measured = {}
        for name, config in (
            ("none", []),
            ("ours", ours),
            ("dexter_rule", dexter),
            ("oracle", best),
        ):
            measured[name] = round(await measured_ms(conn, workload, config), 3)
        await conn.close()
    reduction = {k: 1 - v / measured["none"] for k, v in measured.items() if k != "none"}
    figures = {
        "scale": 0.2,
        "relative_cost": relative,
        "measured_workload_ms": measured,
        "share_of_oracle_reduction": round(reduction["ours"] / reduction["oracle"], 3)
        if reduction["oracle"] > 0
        else None,
        "whatif_calls": advice.whatif_calls,
        "oracle_whatif_calls": oracle_calls,
        "advisor_seconds": round(ours_s, 2),
        "indexes": {
            "ours": [c.statement for c in ours],
            "dexter_rule": [c.statement for c in dexter],
            "oracle": [c.statement for c in best],
        },
        "method": advice.method,
        "versions": versions("asyncpg", "pglast"),
        "machine": machine(),
    }
    path = write_result("index", figures)
    for name in ("ours", "dexter_rule", "oracle"):
        print(
            f"{name:12s} relative cost {relative[name]:.3f}  measured {measured[name]:.3f} ms"
            f" (none {measured['none']:.3f})  {figures['indexes'][name]}"
        )
    print(f"ours: {advice.whatif_calls} what-if plans in {ours_s:.1f} s; wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
