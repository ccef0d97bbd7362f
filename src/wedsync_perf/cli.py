"""`wedsync-perf`: the library's commands, plus any registered by installed packages.

Packages add commands through the `wedsync_perf.commands` entry-point group: each entry
is a callable taking the Typer app. That is how the reference API contributes `serve`,
`seed` and `demo` while this library never imports it.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points, version
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from wedsync_perf.errors import WedsyncPerfError
from wedsync_perf.settings import PerfSettings, env_var_for, load_settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="wedsync-perf",
    help="API performance layer for WedSync: measure, cache, tune, protect, plan.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


@app.command("version")
def show_version() -> None:
    """Print the installed version."""
    typer.echo(version("wedsync-perf"))


@app.command("config")
def show_config(
    show_all: Annotated[bool, typer.Option("--all", help="Include descriptions.")] = False,
) -> None:
    """Show the library's effective settings and the variables that set them."""
    settings = load_settings(PerfSettings)
    table = Table("variable", "value", *(("description",) if show_all else ()))
    for name, info in PerfSettings.model_fields.items():
        row = [env_var_for(PerfSettings, name), str(getattr(settings, name))]
        if show_all:
            row.append(info.description or "")
        table.add_row(*row)
    Console().print(table)


@app.command("top")
def top(
    url: Annotated[str, typer.Option(help="Base URL of an instrumented API.")] = (
        "http://127.0.0.1:8000"
    ),
    token: Annotated[
        str | None,
        typer.Option(
            envvar="WEDSYNC_PERF_METRICS_TOKEN",
            help="Bearer token of /perf/stats.",
            show_default=False,
        ),
    ] = None,
    window: Annotated[float, typer.Option(min=1, max=86400, help="Seconds to summarise.")] = 60,
    interval: Annotated[float, typer.Option(min=0.2, max=60, help="Refresh every N s.")] = 1.0,
    once: Annotated[bool, typer.Option(help="Print one table and exit.")] = False,
) -> None:
    """Live per-route view of the fleet (or one process without Redis)."""
    import time

    import httpx
    from rich.live import Live

    from wedsync_perf.monitoring.client import fetch_stats
    from wedsync_perf.monitoring.terminal import render_stats

    if not token:
        raise WedsyncPerfError("--token (or WEDSYNC_PERF_METRICS_TOKEN) is required")

    def fetch(client: httpx.Client) -> Table:
        return render_stats(fetch_stats(client, token, window))

    out = Console()
    with httpx.Client(base_url=url, timeout=5) as client:
        if once:
            out.print(fetch(client))
            return
        with Live(fetch(client), console=out, refresh_per_second=4) as live:
            try:
                while True:
                    time.sleep(interval)
                    live.update(fetch(client))
            except KeyboardInterrupt:
                return


def _register_plugins() -> None:
    from wedsync_perf.monitoring.commands import register
    from wedsync_perf.scaling.commands import register as register_scaling

    register(app)  # the library's own monitoring and scaling commands
    register_scaling(app)
    for entry in entry_points(group="wedsync_perf.commands"):
        register = entry.load()
        register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; a library error becomes one red line and exit code 2
    (usage errors are reported by Typer itself, also with exit code 2)."""
    _register_plugins()
    try:
        app(args=argv)
    except WedsyncPerfError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
