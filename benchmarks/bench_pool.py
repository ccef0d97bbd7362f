"""Connection pools under pressure: acquire-wait p99 at 1x, 4x and 16x the pool size in
concurrent tasks running 2 ms queries — our laned pool beside plain asyncpg and
psycopg_pool — then the critical lane's wait while bulk work saturates the pool, and
recovery after the server kills every connection. Pool size 10 throughout.

Uses DATABASE_URL, else the embedded PostgreSQL. Run: `make bench-pool`.
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
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, server_url, versions, write_result
from wedsync_perf.database import LanedPool
from wedsync_perf.priorities import PriorityClass

SIZE = 10
OPS = 1500
QUERY = "SELECT pg_sleep(0.002)"


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000


async def drive(acquire_and_query: Callable[[], Awaitable[float]], tasks: int) -> float:
    waits: list[float] = []
    remaining = OPS

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            waits.append(await acquire_and_query())

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return p99(waits)


async def ours(dsn: str) -> tuple[Callable[[], Awaitable[float]], Callable[[], Awaitable[None]]]:
    raw = await asyncpg.create_pool(dsn, min_size=SIZE, max_size=SIZE)
    assert raw is not None
    pool = LanedPool(raw, size=SIZE, reserved_critical=2)

    async def op() -> float:
        started = time.perf_counter()
        async with pool.acquire(PriorityClass.STANDARD, timeout_s=30) as conn:
            waited = time.perf_counter() - started
            await conn.execute(QUERY)
        return waited

    return op, pool.close


async def plain(dsn: str) -> tuple[Callable[[], Awaitable[float]], Callable[[], Awaitable[None]]]:
    pool = await asyncpg.create_pool(dsn, min_size=SIZE, max_size=SIZE)
    assert pool is not None

    async def op() -> float:
        started = time.perf_counter()
        async with pool.acquire(timeout=30) as conn:
            waited = time.perf_counter() - started
            await conn.execute(QUERY)
        return waited

    return op, pool.close


async def psycopg(dsn: str) -> tuple[Callable[[], Awaitable[float]], Callable[[], Awaitable[None]]]:
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(dsn, min_size=SIZE, max_size=SIZE, open=False, timeout=30)
    await pool.open(wait=True)

    async def op() -> float:
        started = time.perf_counter()
        async with pool.connection() as conn:
            waited = time.perf_counter() - started
            await conn.execute(QUERY)
        return waited

    return op, pool.close


async def critical_under_bulk(dsn: str, laned: bool) -> dict[str, float]:
    raw = await asyncpg.create_pool(dsn, min_size=SIZE, max_size=SIZE)
    assert raw is not None
    pool = LanedPool(
        raw, size=SIZE, reserved_critical=2 if laned else 0, max_bulk=4 if laned else SIZE
    )
    stop = asyncio.Event()

    async def bulk() -> None:
        while not stop.is_set():
            async with pool.acquire(PriorityClass.BULK, timeout_s=60) as conn:
                await conn.execute("SELECT pg_sleep(0.05)")

    async def critical(samples: list[float], seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            started = time.perf_counter()
            async with pool.acquire(PriorityClass.CRITICAL, timeout_s=60) as conn:
                samples.append(time.perf_counter() - started)
                await conn.fetchval("SELECT 1")
            await asyncio.sleep(0.01)

    idle: list[float] = []
    await critical(idle, 2.0)
    loaders = [asyncio.create_task(bulk()) for _ in range(64)]
    saturated: list[float] = []
    await critical(saturated, 4.0)
    stop.set()
    await asyncio.gather(*loaders)
    await pool.close()
    return {"idle": round(p99(idle), 3), "bulk_saturated": round(p99(saturated), 3)}


async def recovery(dsn: str) -> float:
    raw = await asyncpg.create_pool(dsn, min_size=SIZE, max_size=SIZE)
    assert raw is not None
    pool = LanedPool(raw, size=SIZE, validate_idle_s=0.5)
    for _ in range(SIZE):
        await pool.fetchval("SELECT 1")
    admin = await asyncpg.connect(dsn)
    pids = [r["pid"] for r in await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )]  # fmt: skip
    started = time.perf_counter()
    await admin.execute("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) AS p", pids)
    ok = 0
    while ok < 20:  # 20 consecutive answers: the pool is whole again
        try:
            await pool.fetchval("SELECT 1")
            ok += 1
        except Exception:
            ok = 0
    elapsed = time.perf_counter() - started
    await admin.close()
    await pool.close()
    return elapsed


async def main() -> None:
    from wedsync_perf.testing import temporary_database

    async with temporary_database(server_url(), prefix="wedsync_bench_pool") as dsn:
        makers: dict[str, Callable[[str], Awaitable[tuple[Any, Any]]]] = {
            "wedsync_perf": ours,
            "asyncpg": plain,
            "psycopg_pool": psycopg,
        }
        results: dict[str, dict[str, list[float]]] = {n: {} for n in makers}
        for round_no in range(3):
            for multiple in (1, 4, 16):
                for name, make in makers.items():
                    op, close = await make(dsn)
                    value = await drive(op, SIZE * multiple)
                    await close()
                    results[name].setdefault(f"{multiple}x", []).append(value)
            print(f"round {round_no + 1}/3 done")
        lanes = await critical_under_bulk(dsn, laned=True)
        no_lanes = await critical_under_bulk(dsn, laned=False)
        recovery_s = await recovery(dsn)
    figures = {
        "pool_size": SIZE,
        "query": QUERY,
        "acquire_p99_ms": {
            name: {k: round(statistics.median(v), 3) for k, v in per.items()}
            for name, per in results.items()
        },
        "critical_wait_p99_ms": lanes,
        "critical_wait_p99_ms_without_lanes": no_lanes,
        "recovery_s": round(recovery_s, 3),
        "versions": versions("asyncpg", "psycopg", "psycopg-pool"),
        "machine": machine(),
    }
    path = write_result("pool", figures)
    table = Table(title=f"Acquire-wait p99 (ms), pool of {SIZE}, 2 ms queries, median of 3")
    table.add_column("pool")
    for multiple in ("1x", "4x", "16x"):
        table.add_column(multiple, justify="right")
    for name, per in figures["acquire_p99_ms"].items():
        table.add_row(name, *(f"{per[m]:.2f}" for m in ("1x", "4x", "16x")))
    Console().print(table)
    print(
        f"critical wait p99 ms with lanes: {lanes}; without: {no_lanes};"
        f" recovery after all backends killed: {recovery_s:.3f} s; wrote {path}"
    )


if __name__ == "__main__":
    asyncio.run(main())
