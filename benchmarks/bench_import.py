"""Supplier import of 100,000 rows: the API's import path (HTTP body → parse →
validate → COPY, in-process through ASGI) against row-by-row INSERT and asyncpg's
`executemany` on the same database, interleaved over several rounds.

The peers get pre-parsed tuples, so they skip the parsing and validation the API does:
the comparison is tilted in their favour. Run: `make bench-import`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, server_url, versions, write_result
from wedsync_api.app import create_app
from wedsync_api.auth import hash_key
from wedsync_api.db import migrate
from wedsync_api.importer import COLUMNS, parse_suppliers
from wedsync_api.settings import ApiSettings
from wedsync_perf.testing import temporary_database

ROWS = 100_000
ROUNDS = 3
KEY = "wsk_bench_import"
INSERT_SQL = (
    f"INSERT INTO suppliers (tenant_id, {', '.join(COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 2))})"
)


def make_csv(rows: int) -> bytes:
    lines = ["name,category,region,lat,lon,rating,price_band,services,email,phone"]
    lines += [
        f"Bench Supplier {i},photographer,london,51.{i % 1000:03d},-0.{i % 997:03d},4.{i % 10},"
        f"{1 + i % 4},full day;album,owner{i}@bench.example,+44 7700 900{i % 1000:03d}"
        for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


async def via_api(client: httpx.AsyncClient, body: bytes) -> float:
    started = time.perf_counter()
    response = await client.post(
        "/imports/suppliers", content=body, headers={"X-API-Key": KEY, "Content-Type": "text/csv"}
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"import failed: {response.status_code} {response.text[:200]}")
    return elapsed


async def via_executemany(conn: asyncpg.Connection, records: list[tuple[object, ...]]) -> float:
    started = time.perf_counter()
    async with conn.transaction():
        await conn.executemany(INSERT_SQL, records)
    return time.perf_counter() - started


async def via_insert(conn: asyncpg.Connection, records: list[tuple[object, ...]]) -> float:
    started = time.perf_counter()
    async with conn.transaction():
        for record in records:
            await conn.execute(INSERT_SQL, *record)
    return time.perf_counter() - started


async def main() -> None:
    body = make_csv(ROWS)
    async with temporary_database(server_url(), prefix="wedsync_bench") as dsn:
        await migrate(dsn)
        conn = await asyncpg.connect(dsn)
        await conn.execute("INSERT INTO tenants (id, name, kind) VALUES (1, 'bench', 'planner')")
        await conn.execute(
            "INSERT INTO api_keys (key_hash, tenant_id) VALUES ($1, 1)", hash_key(KEY)
        )
        records = parse_suppliers(body, "csv", ROWS, tenant_id=1).records
        app = create_app(
            ApiSettings(database_url=None, redis_url=None, rate_limit="1000/second"), dsn=dsn
        )
        timings: dict[str, list[float]] = {"copy": [], "executemany": [], "insert": []}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as client:
                for round_no in range(ROUNDS):
                    for method in ("copy", "executemany", "insert"):
                        await conn.execute("TRUNCATE suppliers CASCADE")
                        if method == "copy":
                            seconds = await via_api(client, body)
                        elif method == "executemany":
                            seconds = await via_executemany(conn, records)
                        else:
                            seconds = await via_insert(conn, records)
                        timings[method].append(seconds)
                        print(f"round {round_no + 1} {method:12s} {ROWS / seconds:>10,.0f} rows/s")
        await conn.close()

    rows_per_s = {m: ROWS / statistics.median(t) for m, t in timings.items()}
    figures = {
        "rows": ROWS,
        "rounds": ROUNDS,
        "rows_per_s": {m: round(v) for m, v in rows_per_s.items()},
        "ratio": {
            "copy_vs_executemany": round(rows_per_s["copy"] / rows_per_s["executemany"], 2),
            "copy_vs_insert": round(rows_per_s["copy"] / rows_per_s["insert"], 2),
        },
        "target_rows_per_s": 50_000,
        "versions": versions("asyncpg", "fastapi", "httpx"),
        "machine": machine(),
    }
    path = write_result("import", figures)
    table = Table(title=f"Supplier import, {ROWS:,} rows (median of {ROUNDS})")
    table.add_column("method")
    table.add_column("rows/s", justify="right")
    table.add_column("vs copy", justify="right")
    for method, value in rows_per_s.items():
        table.add_row(method, f"{value:,.0f}", f"{rows_per_s['copy'] / value:.1f}x")
    Console().print(table)
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
