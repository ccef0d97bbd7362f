"""The reference API's commands, added to `wedsync-perf` through the
`wedsync_perf.commands` entry point: `migrate`, `seed`, `serve`, `demo`."""

from __future__ import annotations

import asyncio
import math
import os
import random
import secrets
import signal
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import httpx
import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from wedsync_api.db import database_url, migrate, migrated_url
from wedsync_api.seed import SeedPlan, is_seeded, seed
from wedsync_api.server import port_free, start_server, stop_server, wait_ready
from wedsync_api.settings import load_api_settings
from wedsync_api.workload import WeddingSaturday
from wedsync_perf.calendar import Regime
from wedsync_perf.database.report import AdviceReport, DatabaseReport, database_report, index_advice
from wedsync_perf.errors import WedsyncPerfError
from wedsync_perf.loadgen import LoadStats, drive, render_summary
from wedsync_perf.monitoring.client import StatsUnavailable, fetch_stats_async
from wedsync_perf.monitoring.terminal import render_stats
from wedsync_perf.serving import serve
from wedsync_perf.traffic import MIX_BY_REGIME

__all__ = ["register"]

console = Console()
if not console.is_terminal:  # logs and pipes: wide enough for the endpoint table
    console = Console(width=120)

Scale = Annotated[
    float, typer.Option(min=0.001, max=20, help="Dataset size; 1 = 20k suppliers, 50k weddings.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; same seed, same data.")]


async def _seed(dsn: str, plan: SeedPlan, force: bool) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        with Progress(
            TextColumn("[bold]seeding[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("tenants", total=5)

            def step(what: str, n: int) -> None:
                progress.update(task, advance=n, description=what)

            return await seed(conn, plan, force=force, progress=step)
    finally:
        await conn.close()


def seed_command(
    scale: Scale = 1.0,
    seed_value: SeedOpt = 7,
    force: Annotated[bool, typer.Option(help="Wipe WedSync tables and reseed.")] = False,
) -> None:
    """Load the deterministic demo dataset (refuses to run twice without --force)."""
    dsn = migrated_url(load_api_settings())
    started = time.perf_counter()
    counts = asyncio.run(_seed(dsn, SeedPlan(scale=scale, seed=seed_value), force))
    total = sum(counts.values())
    console.print(
        f"seeded {total:,} rows in {time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items())
    )


def migrate_command() -> None:
    """Apply pending schema migrations."""
    settings = load_api_settings()
    dsn = database_url(settings)
    applied = asyncio.run(migrate(dsn))
    console.print(f"applied migrations: {applied}" if applied else "schema is up to date")


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
    header_timeout: Annotated[
        float,
        typer.Option(
            min=0.1,
            max=600,
            help="Close a connection whose request head is not complete within this many seconds.",
        ),
    ] = 10.0,
    graceful_shutdown: Annotated[
        int,
        typer.Option(
            min=1,
            max=600,
            help="On SIGTERM, seconds in-flight requests get to finish before they are cancelled.",
        ),
    ] = 10,
) -> None:
    """Serve the reference API with uvicorn (migrating first)."""
    dsn = migrated_url(load_api_settings())
    # Workers inherit the resolved URL, so only this process ever starts a server.
    os.environ["DATABASE_URL"] = dsn
    serve(
        "wedsync_api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        header_timeout_s=header_timeout,
        graceful_shutdown_s=graceful_shutdown,
        log_level="warning",
        access_log=False,
    )


async def _drive_with_table(
    base_url: str,
    workload: WeddingSaturday,
    rps: float,
    duration: float | None,
    banner: str,
    token: str,
    announced: set[str],
) -> tuple[LoadStats, dict[str, Any]]:
    stats = LoadStats()
    rng = random.Random(2026)
    # Ctrl-C (or SIGTERM) ends the run like --duration does: stop sending, drain, report.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    console.print(banner)  # only now: from here on, Ctrl-C ends the run cleanly
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:
        driver = asyncio.create_task(
            drive(client, workload, MIX_BY_REGIME[Regime.WEDDING_DAY], rps=rps,
                  duration_s=duration, stats=stats, rng=rng, stop=stop)
        )  # fmt: skip
        # The live view is the server's own: percentiles from its sketches, last 10 s.
        if console.is_terminal:
            with Live(console=console, refresh_per_second=2) as live:
                while not driver.done():
                    await asyncio.wait({driver}, timeout=1)
                    view = await fetch_stats_async(client, token, 10)
                    _announce_alerts(view, announced, live.console)
                    live.update(render_stats(view))
        else:  # logs: a table every 10 s instead of a live redraw
            while not driver.done():
                await asyncio.wait({driver}, timeout=10)
                if not driver.done():
                    view = await fetch_stats_async(client, token, 10)
                    _announce_alerts(view, announced, console)
                    console.print(render_stats(view))
        await driver
        # One extra window: the run's first window began before the run did.
        whole_run = await fetch_stats_async(
            client, token, min(math.ceil(stats.elapsed_s()) + 10, 3600)
        )
        return stats, whole_run


def _announce_alerts(view: dict[str, Any], announced: set[str], out: Any) -> None:
    """Print each alert the server fires (and its resolution) once."""
    report = view.get("alerts", {})
    for alert in report.get("active", []):
        if alert["state"] == "firing" and alert["fingerprint"] not in announced:
            announced.add(alert["fingerprint"])
            out.print(
                f"[bold red]ALERT {alert['severity'].upper()}[/] {alert['summary']}",
                highlight=False,
            )
    for alert in report.get("recently_resolved", []):
        key = "resolved:" + alert["fingerprint"] + str(alert["resolved_at"])
        if alert["fingerprint"] in announced and key not in announced:
            announced.add(key)
            out.print(f"[bold green]RESOLVED[/] {alert['summary']}", highlight=False)


def demo_command(
    duration: Annotated[
        float | None, typer.Option(min=1, help="Seconds to run; default until Ctrl-C.")
    ] = None,
    rps: Annotated[float, typer.Option(min=1, max=5000, help="Target requests/s.")] = 150.0,
    scale: Scale = 1.0,
    seed_value: SeedOpt = 7,
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
    inject: Annotated[
        str | None,
        typer.Option(
            help="Inject a fault to watch an alert fire: slow-timeline (+250 ms on every"
            " timeline request; give it --duration 90 or more)."
        ),
    ] = None,
    save_run: Annotated[
        Path | None,
        typer.Option(
            help="Write the client-side latencies per endpoint as a benchmark run"
            " (wedsync-perf-bench/1) for `wedsync-perf regress`.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Start what is needed, seed if empty, serve the API and drive a wedding Saturday."""
    if inject not in (None, "slow-timeline"):
        raise typer.BadParameter("the only fault is slow-timeline", param_hint="--inject")
    host = "127.0.0.1"
    if not port_free(host, port):
        raise WedsyncPerfError(f"port {port} on {host} is in use; pick another with --port")
    settings = load_api_settings()
    where = "DATABASE_URL" if settings.database_url else "embedded PostgreSQL"
    console.print(f"[bold]database:[/] {where}")
    dsn = migrated_url(settings)

    async def prepare() -> WeddingSaturday:
        conn = await asyncpg.connect(dsn)
        try:
            if not await is_seeded(conn):
                await conn.close()
                started = time.perf_counter()
                counts = await _seed(dsn, SeedPlan(scale=scale, seed=seed_value), force=False)
                console.print(
                    f"seeded {sum(counts.values()):,} rows (scale {scale:g}) in"
                    f" {time.perf_counter() - started:.1f} s"
                )
                conn = await asyncpg.connect(dsn)
            seeded_with = await conn.fetchval("SELECT seed FROM seed_runs")
            return await WeddingSaturday.from_database(conn, seeded_with)
        finally:
            await conn.close()

    workload = asyncio.run(prepare())
    base_url = f"http://{host}:{port}"
    token = secrets.token_urlsafe(24)
    console.print(f"[bold]starting[/] the API and warming the cache for {workload.day:%a %d %b %Y}")
    server = start_server(dsn, host, port, workers, token, warm=workload.day, inject=inject or "")
    try:
        wait_ready(base_url, server)
        console.print(
            f"[bold]dashboard:[/] {base_url}/perf (any user name; password {token})"
            + (f" — injecting {inject}" if inject else ""),
            highlight=False,
        )
        banner = (
            f"[bold]serving[/] {base_url} (docs at {base_url}/docs); driving the wedding Saturday"
            f" of {workload.day:%a %d %b %Y} at {rps:g} req/s"
            + (f" for {duration:g} s" if duration else "; Ctrl-C to stop")
        )
        announced: set[str] = set()
        stats, server_view = asyncio.run(
            _drive_with_table(base_url, workload, rps, duration, banner, token, announced)
        )
        console.print(render_stats(server_view, title="Whole run (server-side)"))
        _announce_alerts(server_view, announced, console)
        console.print(render_summary(stats, title="Summary by priority class (client-side)"))
        if save_run is not None:
            meta = {"rps": rps, "duration_s": round(stats.elapsed_s(), 1), "scale": scale,
                    "inject": inject or ""}  # fmt: skip
            save_run.write_text(stats.bench_run("demo", meta).to_json())
            console.print(f"saved the run to {save_run} (compare runs with `wedsync-perf regress`)")
    finally:
        stop_server(server)


cache_app = typer.Typer(help="Cache operations.", no_args_is_help=True)


@cache_app.command("warm")
def cache_warm_command(
    day: Annotated[
        str | None, typer.Option("--date", help="Wedding day to warm (YYYY-MM-DD); default today.")
    ] = None,
    rate: Annotated[
        float, typer.Option(min=1, max=10_000, help="Entries started per second.")
    ] = 200,
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Loads at once.")] = 2,
) -> None:
    """Load the day's timelines, vendor lists, weddings and supplier profiles into the
    shared cache before the day begins."""
    from wedsync_api.app import create_app, services_of
    from wedsync_perf.settings import PerfSettings, load_settings

    try:
        target = date.fromisoformat(day) if day else date.today()
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {day!r}", param_hint="--date") from None
    settings = load_api_settings()
    if not settings.redis_url:
        raise WedsyncPerfError(
            "REDIS_URL is not set: warming fills the shared cache, and an in-process cache"
            " lives and dies with its server (it warms itself when started with"
            " WEDSYNC_API_WARM_AHEAD_HOURS)"
        )
    perf = load_settings(PerfSettings)
    dsn = migrated_url(settings)

    async def run() -> None:
        # The app itself, started but serving nothing: warmed entries are stored under
        # its own routes' cache rules, exactly as its requests would store them.
        app = create_app(settings, dsn=dsn, perf=perf)
        async with app.router.lifespan_context(app):
            with Progress(
                TextColumn(f"[bold]warming[/] {target:%a %d %b %Y}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("warm", total=None)

                def step(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                report = await services_of(app).warm(target, rate_per_s=rate,
                                        concurrency=concurrency, progress=step)  # fmt: skip
        console.print(
            f"warmed {report.loaded + report.cached:,} of {report.entries:,} entries for"
            f" {report.weddings:,} weddings in {report.seconds:.1f} s ({report.loaded:,} stored,"
            f" {report.cached:,} already cached, {report.failed} failed): "
            + (", ".join(f"{k} {v:,}" for k, v in sorted(report.by_class.items())) or "none")
        )
        for what, count in sorted(report.skipped.items()):
            console.print(f"skipped {count:,} {what}")

    asyncio.run(run())


MeasureOption = Annotated[
    bool,
    typer.Option(
        "--measure",
        help="Time the workload with the suggestions built in a rolled-back transaction"
        " (holds write locks meanwhile: use a copy, not a busy primary).",
    ),
]

db_app = typer.Typer(help="Database performance.", no_args_is_help=True)


@db_app.command("report")
def db_report_command(
    seconds: Annotated[
        float, typer.Option(min=0, max=3600, help="Measure this long (0: since stats reset).")
    ] = 0,
    limit: Annotated[int, typer.Option(min=1, max=200, help="Statements to show.")] = 15,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    explain_plans: Annotated[
        bool,
        typer.Option("--explain", help="Plan each statement (PostgreSQL 16+) and report findings."),
    ] = False,
    advise_indexes: Annotated[
        bool, typer.Option("--advise/--no-advise", help="Index suggestions for the workload.")
    ] = True,
    measure: MeasureOption = False,
    api: Annotated[
        str | None,
        typer.Option(
            help="A running API's base URL: add its per-route query counts and N+1 findings"
            " (/perf/stats, with WEDSYNC_PERF_METRICS_TOKEN)."
        ),
    ] = None,
) -> None:
    """Top statement shapes by total time (pg_stat_statements, grouped by fingerprint),
    plan findings, index suggestions, indexes that cost writes for nothing, and the N+1
    findings of a running API."""
    import orjson

    from wedsync_api.workload_sql import reference_workload

    dsn = migrated_url(load_api_settings())

    async def run() -> tuple[DatabaseReport, dict[str, Any] | None]:
        conn = await asyncpg.connect(dsn)
        try:
            report = await database_report(
                conn,
                reference_workload,
                seconds=seconds,
                limit=limit,
                explain_plans=explain_plans,
                advise_indexes=advise_indexes,
                measure=measure,
            )
        finally:
            await conn.close()
        api_queries = await _api_queries(api) if api else None
        return report, api_queries

    report, api_queries = asyncio.run(run())
    if as_json:
        out = report.as_dict()
        if api_queries is not None:
            out["api_queries"] = api_queries
        typer.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    _print_report(report, api_queries)


async def _api_queries(base_url: str) -> dict[str, Any]:
    from wedsync_perf.settings import PerfSettings, load_settings

    token = load_settings(PerfSettings).metrics_token
    if not token:
        raise typer.BadParameter(
            "set WEDSYNC_PERF_METRICS_TOKEN to read /perf/stats", param_hint="--api"
        )
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        try:
            view = await fetch_stats_async(client, token.get_secret_value())
        except StatsUnavailable as exc:
            raise typer.BadParameter(str(exc), param_hint="--api") from exc
    queries: dict[str, Any] = view.get("queries", {})
    return queries


def _print_report(report: DatabaseReport, api: dict[str, Any] | None) -> None:
    from rich.table import Table

    if report.statements is None:
        console.print(
            "pg_stat_statements is not loaded on this server: add it to"
            " shared_preload_libraries and restart (the embedded server has it)."
        )
    else:
        table = Table(title="Top statements by total time", title_justify="left")
        for name in ("total ms", "calls", "mean ms", "rows", "cache hit", "shape"):
            table.add_column(name, justify="left" if name == "shape" else "right")
        for row in report.statements:
            table.add_row(f"{row['total_ms']:,.1f}", f"{row['calls']:,}", f"{row['mean_ms']:.3f}",
                          f"{row['rows']:,}", f"{row['cache_hit_ratio']:.1%}", row["shape"][:120])  # fmt: skip
        console.print(table)
        for row in report.statements:
            for finding in row.get("findings", []):
                console.print(
                    f"[bold]{finding['kind']}[/] {finding['detail']} → {finding['suggestion']}",
                    highlight=False,
                )
    for index in report.existing_indexes:
        console.print(
            f"[bold]{index.kind} index[/] {index.index} on {index.table}:"
            f" {index.detail} → {index.suggestion}",
            highlight=False,
        )
    if report.index_advice is not None:
        _print_advice(report.index_advice)
    if api is not None:
        for finding in api.get("n_plus_one", []):
            console.print(
                f"[bold]N+1[/] {finding['route']}: {finding['repeats']}x {finding['shape'][:100]}"
                f" ({finding['total_ms']:.1f} ms, seen {finding['occurrences']}x)",
                highlight=False,
            )
        if not api.get("n_plus_one"):
            console.print("no N+1 pattern seen by the API")


@db_app.command("advise")
def db_advise_command(
    budget_mb: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="Storage budget for new indexes.")
    ] = 512,
    measure: MeasureOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Index suggestions for the workload (pg_stat_statements on PostgreSQL 16+, else the
    reference API's own read workload), costed by the planner; nothing is created."""
    import orjson

    from wedsync_api.workload_sql import reference_workload

    dsn = migrated_url(load_api_settings())

    async def run() -> AdviceReport:
        conn = await asyncpg.connect(dsn)
        try:
            return await index_advice(
                conn, reference_workload, budget_bytes=budget_mb * 1024 * 1024, measure=measure
            )
        finally:
            await conn.close()

    report = asyncio.run(run())
    if as_json:
        typer.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    _print_advice(report)


def _print_advice(report: AdviceReport) -> None:
    from rich.table import Table

    console.print(
        f"{report.queries} queries from the {report.workload}, costed with"
        f" {report.method} ({report.whatif_calls} what-if plans): workload cost"
        f" {report.relative_cost:.0%} of today's with the suggestions below"
    )
    measured = report.measured_workload_ms
    if measured:
        console.print(
            f"measured: {measured.now:,.2f} ms now, {measured.with_suggestions:,.2f} ms"
            " with them (built in a rolled-back transaction)"
        )
    table = Table("gain", "size", "table writes", "statement")
    for s in report.suggestions:
        needs = f"CREATE EXTENSION {s.requires_extension}; " if s.requires_extension else ""
        table.add_row(f"{s.gain:.1%}", f"{s.size_bytes / 1024:,.0f} kB",
                      f"{s.table_writes:,}", needs + s.statement)  # fmt: skip
    console.print(table if report.suggestions else "no index would pay for itself")


def register(app: typer.Typer) -> None:
    """Entry point of the `wedsync_perf.commands` group."""
    app.add_typer(cache_app, name="cache")
    app.add_typer(db_app, name="db")
    app.command("migrate")(migrate_command)
    app.command("seed")(seed_command)
    app.command("serve")(serve_command)
    app.command("demo")(demo_command)
    from wedsync_api.capacity_cli import capacity_app

    app.add_typer(capacity_app, name="capacity")
