"""The monitoring commands of `wedsync-perf`: `slo rules`, `slo show`, `grafana`,
`regress`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from wedsync_perf.monitoring.slo import SloConfig, default_slos

__all__ = ["register"]

console = Console()

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="SLO file (TOML, [[objectives]]); default: WEDSYNC_PERF_SLO_FILE or the built-in SLOs.",
        exists=True,
        dir_okay=False,
    ),
]


def load_slos(path: Path | None) -> SloConfig:
    """The SLO file given, else `WEDSYNC_PERF_SLO_FILE`, else the built-in SLOs at the
    configured latency targets."""
    from wedsync_perf.settings import PerfSettings, load_settings

    settings = load_settings(PerfSettings)
    path = path or settings.slo_file
    if path:
        return SloConfig.from_toml(path)
    return default_slos(settings.slo_ms, settings.critical_slo_ms)


slo_app = typer.Typer(help="Service-level objectives.", no_args_is_help=True)


@slo_app.command("rules")
def slo_rules(
    out: Annotated[Path, typer.Option(help="Folder for the rule file and its test.")] = Path("."),
    config: ConfigOption = None,
) -> None:
    """Write Prometheus recording + alerting rules for the SLOs (`wedsync-slo.rules.yml`)
    and a `promtool test rules` file proving a fast burn pages and a blip does not."""
    import yaml

    from wedsync_perf.monitoring.rules import prometheus_rules, rules_test

    slos = load_slos(config)
    out.mkdir(parents=True, exist_ok=True)
    rules_path = out / "wedsync-slo.rules.yml"
    test_path = out / "wedsync-slo.rules.test.yml"
    rules_path.write_text(yaml.safe_dump(prometheus_rules(slos), sort_keys=False))
    test_path.write_text(yaml.safe_dump(rules_test(slos, rules_path.name), sort_keys=False))
    console.print(f"wrote {rules_path} and {test_path}")
    console.print(
        f"check them with: promtool check rules {rules_path} && promtool test rules {test_path}"
    )


@slo_app.command("show")
def slo_show(config: ConfigOption = None) -> None:
    """The objectives in force, per regime."""
    from wedsync_perf.calendar import Regime

    table = Table("objective", "kind", "selects", "normal", "wedding day")
    for o in load_slos(config).objectives:
        selects = o.route or (o.priority.value if o.priority else "all requests")
        cells = []
        for regime in (Regime.SEASON, Regime.WEDDING_DAY):
            target, threshold = o.target(regime)
            bar = f" < {threshold * 1000:g} ms" if threshold else " not 5xx"
            cells.append(f"{target:.2%}{bar}")
        table.add_row(o.name, o.kind, selects, *cells)
    console.print(table)


def grafana(
    out: Annotated[Path, typer.Option(help="Dashboard JSON to write.")] = Path(
        "wedsync-grafana.json"
    ),
    config: ConfigOption = None,
) -> None:
    """Write a Grafana dashboard (RED per route, SLO burn rates) for Prometheus users."""
    from wedsync_perf.monitoring.grafana import grafana_dashboard

    out.write_text(json.dumps(grafana_dashboard(load_slos(config)), indent=2))
    console.print(f"wrote {out}: import it in Grafana and pick the Prometheus data source")


def regress(
    baseline: Annotated[Path, typer.Option(help="Baseline run (wedsync-perf-bench/1 JSON).")],
    current: Annotated[Path, typer.Option(help="Run to judge.")],
    alpha: Annotated[float, typer.Option(min=1e-6, max=0.2, help="U-test significance.")] = 0.01,
    min_effect: Annotated[
        float, typer.Option(min=0.0, max=10.0, help="Smallest p95 growth that counts (0.05 = 5 %).")
    ] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Compare two benchmark runs route by route; exit 1 on a significant regression."""
    from dataclasses import asdict

    from wedsync_perf.monitoring.regression import BenchRun, compare

    results = compare(
        BenchRun.load(baseline), BenchRun.load(current), alpha=alpha, min_effect=min_effect
    )
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in results], indent=1))
    else:
        table = Table("route", "baseline p95", "current p95", "change", "verdict")
        for r in results:
            verdict = (
                "[bold red]REGRESSION[/]" if r.regression else ("faster" if r.improvement else "ok")
            )
            table.add_row(r.route, f"{r.baseline_p95_ms:.2f} ms", f"{r.current_p95_ms:.2f} ms",
                          f"{r.p95_ratio - 1:+.1%}", f"{verdict} — {r.reason}")  # fmt: skip
        console.print(table if results else "no route has enough samples in both runs")
        for r in results:  # one unwrapped line each, for CI logs
            if r.regression:
                console.print(f"REGRESSION {r.route}: {r.reason}", soft_wrap=True, highlight=False)
    if any(r.regression for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(slo_app, name="slo")
    app.command("grafana")(grafana)
    app.command("regress")(regress)
