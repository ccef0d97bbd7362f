"""Index advice on the seeded database (scale 0.2) with the reference API's read
workload: workload cost (planner) and *measured* workload time with no extra indexes,
with our suggestions, with Dexter's published rule re-implemented (per query, single and
2-column candidates, kept when they cut that query's cost by at least 50 %), and with an
exhaustive oracle over b-tree candidates of width ≤ 2 (up to 3 indexes) in the same
storage budget.

The reference schema ships tuned, so the benchmark first drops every secondary index
(primary keys and unique constraints stay): the schema as a team first writes it, with
genuinely missing indexes for the advisors to find.

Uses DATABASE_URL, else the embedded PostgreSQL. Run: `make bench-index`.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, server_url, versions, write_result
from wedsync_api.db import migrate
from wedsync_api.seed import SeedPlan, seed
from wedsync_api.workload_sql import reference_workload
from wedsync_perf.database.advisor import (
    Candidate,
    WorkloadQuery,
    _WhatIf,
    advise,
    candidates,
    measure_workload,
)
from wedsync_perf.testing import temporary_database

BUDGET = 256 * 1024 * 1024


def plain_btrees(sql: str) -> list[Candidate]:
    """What Dexter and the oracle consider: b-trees of one or two columns, no predicate."""
    return [
        c for c in candidates(sql) if c.method == "btree" and not c.where and len(c.columns) <= 2
    ]


async def strip_secondary_indexes(conn: asyncpg.Connection) -> list[str]:
    names = await conn.fetch(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relnamespace = 'public'::regnamespace AND NOT i.indisunique"
    )
    for row in names:
        await conn.execute(f'DROP INDEX "{row["relname"]}"')
    await conn.execute("ANALYZE")
    return [row["relname"] for row in names]


async def dexter_rule(conn: asyncpg.Connection, workload: list[WorkloadQuery]) -> list[Candidate]:
    chosen: list[Candidate] = []
    for query in workload:
        whatif = _WhatIf(conn, [query])
        await whatif.setup()
        base = await whatif.cost([])
        options = plain_btrees(query.sql)
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
    await whatif.setup()
    pool = sorted({c for q in workload for c in plain_btrees(q.sql)})
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
        dropped = await strip_secondary_indexes(conn)
        workload = await reference_workload(conn)
        started = time.perf_counter()
        advice = await advise(conn, workload, budget_bytes=BUDGET)
        ours_s = time.perf_counter() - started
        ours = [s.candidate for s in advice.suggestions]
        dexter = await dexter_rule(conn, workload)
        best, oracle_calls = await oracle(conn, workload)
        costing = _WhatIf(conn, workload)
        await costing.setup()
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
            measured[name] = round(await measure_workload(conn, workload, config), 3)
        server_version = await conn.fetchval("SHOW server_version")
        await conn.close()
    reduction = {k: 1 - v / measured["none"] for k, v in measured.items() if k != "none"}
    figures = {
        "scale": 0.2,
        "dropped_indexes": dropped,
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
        "server": server_version,
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
