"""The N+1 detector: recall and precision on request handlers with and without N+1
patterns against the seeded database, and its cost per query (asyncpg query logger +
fingerprint lookup), interleaved with the same queries unobserved.

Run: `make bench-nplusone` (uses DATABASE_URL, else the embedded PostgreSQL).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, server_url, versions, write_result
from wedsync_api.db import migrate
from wedsync_api.seed import SeedPlan, seed
from wedsync_perf.database.queries import QueryTracker, RequestQueries, TimedConnection
from wedsync_perf.testing import temporary_database

Handler = Callable[[asyncpg.Connection, list[int]], Awaitable[None]]
SLOW = "pg_sleep(0.008)"


async def n_plus_one_vendors(conn: asyncpg.Connection, ids: list[int]) -> None:
    for sid in ids:  # one query per vendor
        await conn.fetchrow(f"SELECT name, {SLOW} FROM suppliers WHERE id = $1", sid)


async def n_plus_one_timelines(conn: asyncpg.Connection, ids: list[int]) -> None:
    for wid in ids:
        await conn.fetch(f"SELECT title, {SLOW} FROM timeline_items WHERE wedding_id = $1", wid)


async def n_plus_one_aliased(conn: asyncpg.Connection, ids: list[int]) -> None:
    for i, sid in enumerate(ids):  # same shape, aliases differ: still one fingerprint
        alias = "s" if i % 2 else "sup"
        await conn.fetchrow(
            f"SELECT {alias}.name, {SLOW} FROM suppliers {alias} WHERE {alias}.id = $1", sid
        )


async def batched(conn: asyncpg.Connection, ids: list[int]) -> None:
    await conn.fetch(f"SELECT name, {SLOW} FROM suppliers WHERE id = ANY($1::bigint[])", ids)


async def in_list(conn: asyncpg.Connection, ids: list[int]) -> None:
    await conn.fetch(f"SELECT name FROM suppliers WHERE id IN ({', '.join(map(str, ids))})")


async def few_distinct(conn: asyncpg.Connection, ids: list[int]) -> None:
    await conn.fetchval(f"SELECT count(*), {SLOW} FROM suppliers")
    await conn.fetchval(f"SELECT count(*), {SLOW} FROM venues")
    await conn.fetchval(f"SELECT count(*), {SLOW} FROM weddings")


async def repeated_but_cheap(conn: asyncpg.Connection, ids: list[int]) -> None:
    for sid in ids:  # repeats, but far under 50 ms in total: not worth a finding
        await conn.fetchval("SELECT name FROM suppliers WHERE id = $1", sid)


CASES: dict[str, tuple[Handler, bool]] = {
    "n_plus_one_vendors": (n_plus_one_vendors, True),
    "n_plus_one_timelines": (n_plus_one_timelines, True),
    "n_plus_one_aliased": (n_plus_one_aliased, True),
    "batched_any": (batched, False),
    "in_list": (in_list, False),
    "few_distinct": (few_distinct, False),
    "repeated_but_cheap": (repeated_but_cheap, False),
}


async def run_case(
    conn: asyncpg.Connection, tracker: QueryTracker, name: str, handler: Handler, ids: list[int]
) -> bool:
    queries = RequestQueries()
    conn.add_query_logger(queries.observe)
    try:
        await handler(conn, ids)
    finally:
        await asyncio.sleep(0)  # asyncpg delivers log records with call_soon
        conn.remove_query_logger(queries.observe)
    return bool(tracker.finish(f"/{name}", queries))


async def overhead(conn: asyncpg.Connection) -> dict[str, float]:
    """µs added per query by each way of observing, interleaved with unobserved runs."""

    async def batch(mode: str) -> float:
        queries = RequestQueries()
        target: Any = TimedConnection(conn, queries) if mode == "wrapper" else conn
        if mode == "asyncpg_logger":
            conn.add_query_logger(queries.observe)
        started = time.perf_counter()
        for i in range(1000):
            await target.fetchval("SELECT $1::int", i)
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0)
        if mode == "asyncpg_logger":
            conn.remove_query_logger(queries.observe)
        return elapsed / 1000 * 1e6

    samples: dict[str, list[float]] = {"none": [], "wrapper": [], "asyncpg_logger": []}
    for _ in range(21):
        for mode in samples:
            samples[mode].append(await batch(mode))
    base = statistics.median(samples["none"])

    class Instant:  # a connection that answers at once: the wrapper's own cost, alone
        async def fetchval(self, query: str, *args: Any) -> int:
            return 1

    instant: Any = Instant()
    wrapped: Any = TimedConnection(instant, RequestQueries())
    runs = []
    for target in (instant, wrapped, instant, wrapped):
        started = time.perf_counter()
        for i in range(100_000):
            await target.fetchval("SELECT name FROM suppliers WHERE id = $1", i)
        runs.append((time.perf_counter() - started) / 100_000 * 1e6)
    isolated = min(runs[1], runs[3]) - min(runs[0], runs[2])
    return {
        "wrapper_isolated": round(isolated, 3),
        "wrapper": round(statistics.median(samples["wrapper"]) - base, 2),
        "asyncpg_logger": round(statistics.median(samples["asyncpg_logger"]) - base, 2),
    }


async def main() -> None:
    async with temporary_database(server_url(), prefix="wedsync_bench_np1") as dsn:
        await migrate(dsn)
        conn = await asyncpg.connect(dsn)
        await seed(conn, SeedPlan(scale=0.05, seed=3))
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM suppliers ORDER BY id LIMIT 8")]
        tracker = QueryTracker()
        truth_pos = flagged_true = flagged_false = 0
        outcome = {}
        for name, (handler, is_n_plus_one) in CASES.items():
            flagged = await run_case(conn, tracker, name, handler, ids)
            outcome[name] = {"n_plus_one": is_n_plus_one, "flagged": flagged}
            truth_pos += is_n_plus_one
            flagged_true += flagged and is_n_plus_one
            flagged_false += flagged and not is_n_plus_one
        cost = await overhead(conn)
        await conn.close()
    recall = flagged_true / truth_pos
    precision = flagged_true / max(flagged_true + flagged_false, 1)
    figures = {
        "cases": outcome,
        "recall": round(recall, 3),
        "precision": round(precision, 3),
        "overhead_us_per_query": cost["wrapper_isolated"],
        "overhead_us_per_query_by_method": cost,
        "rule": {"min_repeats": tracker.min_repeats, "min_total_ms": tracker.min_total_ms},
        "versions": versions("asyncpg", "pglast"),
        "machine": machine(),
    }
    path = write_result("nplusone", figures)
    for name, result in outcome.items():
        print(f"{name:22s} N+1={result['n_plus_one']!s:5s} flagged={result['flagged']}")
    print(f"recall {recall:.0%}, precision {precision:.0%}, overhead µs/query {cost}; wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
