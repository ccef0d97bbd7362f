"""`wedsync-perf capacity measure | plan`: a load test of one reference-API replica, and
the monthly replica and connection plan it implies."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import httpx
import typer
from rich.console import Console
from rich.table import Table

from wedsync_api.db import migrated_url
from wedsync_api.seed import is_seeded
from wedsync_api.server import port_free, start_server, stop_server, wait_ready
from wedsync_api.settings import load_api_settings
from wedsync_api.workload import WeddingSaturday
from wedsync_perf.calendar import Regime
from wedsync_perf.errors import WedsyncPerfError
from wedsync_perf.loadgen.driver import closed_loop
from wedsync_perf.monitoring.client import fetch_stats_async
from wedsync_perf.scaling.commands import BaseRps, PerWeddingRps, SeasonFactor
from wedsync_perf.traffic import MIX_BY_REGIME

__all__ = ["capacity_app"]

console = Console()
capacity_app = typer.Typer(help="Capacity planning.", no_args_is_help=True)
LOADTEST_FORMAT = "wedsync-perf-loadtest/1"


@capacity_app.command("measure")
def measure_command(
    out: Annotated[Path, typer.Option(help="Where to write the load test (JSON).")] = Path(
        "capacity-loadtest.json"
    ),
    levels: Annotated[
        str, typer.Option(help="Concurrency levels, comma-separated.")
    ] = "1,2,4,8,16,32,64",
    seconds: Annotated[float, typer.Option(min=1, max=600, help="Seconds per level.")] = 5.0,
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8011,
) -> None:
    """Closed-loop load test of one API replica (one worker) at rising concurrency, with
    the wedding-Saturday request mix: throughput and latency per level."""
    try:
        counts = sorted({int(v) for v in levels.split(",") if v.strip()})
    except ValueError:
        raise typer.BadParameter(
            "comma-separated integers, e.g. 1,2,4,8", param_hint="--levels"
        ) from None
    if len(counts) < 4 or counts[0] < 1:
        raise typer.BadParameter(
            "at least 4 levels, each ≥ 1 (the USL fit needs them)", param_hint="--levels"
        )
    if not port_free("127.0.0.1", port):
        raise WedsyncPerfError(f"port {port} is in use; pick another with --port")
    result = asyncio.run(_measure(counts, seconds, port))
    out.write_text(json.dumps(result, indent=1))
    table = Table(
        "concurrency", "req/s", "p50 ms", "p95 ms", "errors", title="One replica, closed loop"
    )
    for p in result["points"]:
        table.add_row(str(p["concurrency"]), f"{p['throughput_rps']:.1f}", f"{p['p50_ms']:.1f}",
                      f"{p['p95_ms']:.1f}", str(p["errors"]))  # fmt: skip
    console.print(table)
    console.print(
        f"database time per request: {result['db_seconds_per_request'] * 1000:.2f} ms; wrote {out}"
    )


async def _measure(counts: list[int], seconds: float, port: int) -> dict[str, Any]:
    dsn = await asyncio.to_thread(migrated_url, load_api_settings())
    conn = await asyncpg.connect(dsn)
    try:
        if not await is_seeded(conn):
            raise WedsyncPerfError("the database is empty: run `wedsync-perf seed` first")
        seeded_with = await conn.fetchval("SELECT seed FROM seed_runs")
        workload = await WeddingSaturday.from_database(conn, seeded_with)
    finally:
        await conn.close()
    token = secrets.token_urlsafe(16)
    # The replica's capacity, not the per-key rate limit's: lift the limit for the test.
    server = start_server(dsn, "127.0.0.1", port, 1, token,
                          extra_env={"WEDSYNC_API_RATE_LIMIT": "100000000/minute"})  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    points = []
    try:
        await asyncio.to_thread(wait_ready, base, server)
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            rng = random.Random(2026)
            mix = MIX_BY_REGIME[Regime.WEDDING_DAY]
            await closed_loop(client, workload, mix, concurrency=4, duration_s=1.0, rng=rng)  # warm
            for n in counts:
                stats = await closed_loop(
                    client, workload, mix, concurrency=n, duration_s=seconds, rng=rng
                )
                merged = list(stats.endpoints.values())
                total = sum(s.count for s in merged)
                everything = stats.by_class()
                sketch = None
                for s in everything.values():
                    if sketch is None:
                        sketch = s.sketch
                    else:
                        sketch.merge(s.sketch)
                p50 = sketch.get_quantile_value(0.5) if sketch else None
                p95 = sketch.get_quantile_value(0.95) if sketch else None
                points.append({
                    "concurrency": n,
                    "throughput_rps": round(total / stats.elapsed_s(), 2),
                    "p50_ms": round((p50 or 0) * 1000, 3),
                    "p95_ms": round((p95 or 0) * 1000, 3),
                    "errors": sum(s.errors for s in merged),
                })  # fmt: skip
            stats_view = await fetch_stats_async(client, token)
    finally:
        stop_server(server, timeout_s=30)
    hold_ms = float(stats_view.get("pool", {}).get("mean_hold_ms") or 0.0)
    return {
        "format": LOADTEST_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds_per_level": seconds,
        "points": points,
        "db_seconds_per_request": hold_ms / 1000,
        "note": "client and server share the machine: throughput is what one replica serves here",
    }


def load_test_points(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WedsyncPerfError(f"{path}: cannot read the load test: {exc}") from exc
    if data.get("format") != LOADTEST_FORMAT or len(data.get("points", [])) < 4:
        raise WedsyncPerfError(f'{path}: expected "format": "{LOADTEST_FORMAT}" with ≥ 4 points')
    return data


@capacity_app.command("plan")
def plan_command(
    load_test: Annotated[
        Path, typer.Option(help="From `capacity measure` (run first).", exists=True, dir_okay=False)
    ] = Path("capacity-loadtest.json"),
    year: Annotated[int, typer.Option(min=2000, max=2100)] = 2027,
    p95_target_ms: Annotated[float, typer.Option(min=1, max=10_000)] = 200.0,
    headroom: Annotated[int, typer.Option(min=0, max=100, help="Spare replicas (N+1: 1).")] = 1,
    png: Annotated[Path, typer.Option(help="Chart to write.")] = Path("capacity-plan.png"),
    base_rps: BaseRps = 20.0,
    season_factor: SeasonFactor = 10.0,
    per_wedding_rps: PerWeddingRps = 0.05,
) -> None:
    """Replicas and database connections per month of `year`: the USL fit of the load
    test for one replica's capacity, the wedding calendar (weddings booked in the
    database) for demand, Erlang C for the p95 target."""
    from wedsync_perf.scaling.capacity import fit_usl, plan_months
    from wedsync_perf.scaling.model import TrafficModel

    data = load_test_points(load_test)
    points = data["points"]
    fit = fit_usl([p["concurrency"] for p in points], [p["throughput_rps"] for p in points])
    bookings = asyncio.run(_bookings(year))
    model = TrafficModel(base_rps=base_rps, season_factor=season_factor,
                         per_wedding_rps=per_wedding_rps, bookings=bookings)  # fmt: skip
    # Plan on the lower end of the replica's capacity: its 90 % interval's low bound.
    replica_rps = fit.peak_rps_ci[0]
    rows = plan_months(
        model, year, replica_rps=replica_rps, p95_target_s=p95_target_ms / 1000,
        db_seconds_per_request=float(data["db_seconds_per_request"]), headroom=headroom,
    )  # fmt: skip
    console.print(
        f"one replica: peak {fit.peak_rps:.0f} req/s at concurrency {fit.peak_concurrency:.0f}"
        f" (90 % CI {fit.peak_rps_ci[0]:.0f}–{fit.peak_rps_ci[1]:.0f}; USL σ={fit.sigma:.3f},"
        f" κ={fit.kappa:.5f}); planning on {replica_rps:.0f} req/s;"
        f" {sum(bookings.values()):,} weddings booked in {year}"
    )
    table = Table("month", "peak req/s", "replicas", "db connections", "utilisation at peak",
                  title=f"Capacity plan {year} (p95 < {p95_target_ms:g} ms, +{headroom} spare)")  # fmt: skip
    for row in rows:
        table.add_row(row.month, f"{row.peak_rps:,.0f}", str(row.replicas), str(row.db_connections),
                      f"{row.utilisation_at_peak:.0%}")  # fmt: skip
    console.print(table)
    _chart(rows, png, year)
    console.print(f"wrote {png}")


async def _bookings(year: int) -> dict[Any, int]:
    dsn = await asyncio.to_thread(migrated_url, load_api_settings())
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT wedding_date, count(*) AS n FROM weddings WHERE status <> 'cancelled'"
            " AND wedding_date >= make_date($1, 1, 1) AND wedding_date < make_date($1 + 1, 1, 1)"
            " GROUP BY wedding_date",
            year,
        )
    finally:
        await conn.close()
    return {row["wedding_date"]: int(row["n"]) for row in rows}


def _chart(rows: list[Any], path: Path, year: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, left = plt.subplots(figsize=(9, 4.5))
    months = [r.month[5:] for r in rows]
    left.bar(months, [r.replicas for r in rows], color="#2457a6", label="replicas")
    left.set_ylabel("replicas")
    left.set_xlabel(f"month of {year}")
    right = left.twinx()
    right.plot(months, [r.peak_rps for r in rows], color="#b3261e", marker="o", label="peak req/s")
    right.set_ylabel("peak requests/s (upper quantile)")
    fig.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
