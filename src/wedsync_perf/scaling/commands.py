"""`wedsync-perf simulate` and `wedsync-perf scale manifests | decide`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]

console = Console()
# The traffic model's levels, as options (also used by `capacity plan`).
BaseRps = Annotated[
    float, typer.Option(min=0, help="Traffic model: off-season weekday average req/s.")
]
SeasonFactor = Annotated[
    float, typer.Option(min=0, help="Traffic model: how much busier May–October is.")
]
PerWeddingRps = Annotated[
    float,
    typer.Option(min=0, help="Traffic model: extra req/s one booked wedding brings on its day."),
]

scale_app = typer.Typer(
    help="Autoscaling on traffic and the wedding calendar.", no_args_is_help=True
)


def simulate(
    days: Annotated[
        int, typer.Option(min=15, max=400, help="Trace length; the first 14 days are history.")
    ] = 35,
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD).")] = "2027-05-03",
    replica_rps: Annotated[
        float, typer.Option(min=1, help="One replica's service rate (capacity measure).")
    ] = 900.0,
    png: Annotated[Path, typer.Option(help="Plot of a wedding week.")] = Path("autoscale.png"),
    seed: Annotated[int, typer.Option(help="Trace seed.")] = 3,
) -> None:
    """Replay a season trace under every policy (HPA on rps, HPA on CPU, HPA + cron floor,
    AWS-style predictive, static peak fleet, ours) and compare them."""
    from wedsync_perf.scaling.scenario import POLICIES, Scenario

    try:
        first = date.fromisoformat(start)
    except ValueError:
        raise typer.BadParameter("a date like 2027-05-03", param_hint="--start") from None
    scenario = Scenario(start=first, days=days, mu_rps=replica_rps, seed=seed)
    results = {}
    with console.status("simulating…"):
        for name in POLICIES:
            results[name] = scenario.run(name)
    table = Table("policy", "violation minutes", "instance-hours", "scale events",
                  "scale-downs near a rush", title=f"{days - scenario.warmup_days} days from"
                  f" {scenario.trace.at(scenario.warmup_days * 1440):%d %b %Y}")  # fmt: skip
    for name, r in results.items():
        table.add_row(name, str(r.violation_minutes), f"{r.instance_hours:,.0f}", str(r.scale_events),
                      str(r.scale_downs_in_wedding_windows))  # fmt: skip
    console.print(table)
    scenario.plot({k: v for k, v in results.items() if k != "wedding_hold_all_day"}, png)
    console.print(f"wrote {png}")


@scale_app.command("manifests")
def manifests(
    deployment: Annotated[str, typer.Option(help="The Deployment to scale.")] = "wedsync-api",
    namespace: Annotated[str, typer.Option()] = "default",
    min_replicas: Annotated[int, typer.Option(min=1)] = 2,
    max_replicas: Annotated[int, typer.Option(min=1)] = 50,
    rps_per_pod: Annotated[float, typer.Option(min=1, help="Target requests/s per pod.")] = 630.0,
    wedding_day_floor: Annotated[
        int, typer.Option(min=1, help="Replicas held on wedding days.")
    ] = 10,
    booked: Annotated[
        Path | None,
        typer.Option(help="JSON list of dates with weddings booked (YYYY-MM-DD).", exists=True),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("."),
) -> None:
    """Write an autoscaling/v2 HPA and a KEDA ScaledObject with wedding-calendar cron
    floors, both checked against the kubernetes client's models."""
    import yaml

    from wedsync_perf.scaling.manifests import hpa_manifest, keda_scaled_object, validate

    if min_replicas > max_replicas:
        raise typer.BadParameter("must not exceed --max-replicas", param_hint="--min-replicas")
    dates: list[date] = []
    if booked is not None:
        try:
            dates = [date.fromisoformat(d) for d in json.loads(booked.read_text())]
        except (ValueError, TypeError) as exc:
            raise typer.BadParameter(
                f"a JSON list of YYYY-MM-DD dates ({exc})", param_hint="--booked"
            ) from exc
    hpa = hpa_manifest(deployment, namespace=namespace, min_replicas=min_replicas,
                       max_replicas=max_replicas, rps_per_pod=rps_per_pod)  # fmt: skip
    keda = keda_scaled_object(deployment, namespace=namespace, min_replicas=min_replicas,
                              max_replicas=max_replicas, wedding_day_floor=wedding_day_floor,
                              booked_dates=dates, rps_per_pod=rps_per_pod)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    for manifest, name in ((hpa, "hpa.yaml"), (keda, "keda-scaledobject.yaml")):
        validate(manifest)
        (out / name).write_text(yaml.safe_dump(manifest, sort_keys=False))
        console.print(f"wrote {out / name}")
    console.print("apply one of them (both would fight over the Deployment)")


@scale_app.command("decide")
def decide(
    rps: Annotated[float, typer.Option(min=0, help="Requests/s now.")],
    current: Annotated[int, typer.Option(min=1, help="Replicas now.")],
    replica_rps: Annotated[float, typer.Option(min=1)] = 900.0,
    at: Annotated[str | None, typer.Option(help="When (ISO, UTC); default now.")] = None,
    apply_to: Annotated[
        str | None,
        typer.Option("--apply-to", help="Deployment to scale through the scale subresource."),
    ] = None,
    namespace: Annotated[str, typer.Option()] = "default",
    live: Annotated[
        bool, typer.Option("--live", help="Really scale (default: the API server's dry run).")
    ] = False,
    base_rps: BaseRps = 20.0,
    per_wedding_rps: PerWeddingRps = 0.05,
) -> None:
    """One decision of our policy for the given load and moment, with its reason;
    optionally sent to Kubernetes (dry-run unless --live)."""
    from wedsync_perf.scaling.autoscaler import Forecaster, Observation, WeddingAutoscaler
    from wedsync_perf.scaling.model import TrafficModel

    try:
        moment = datetime.fromisoformat(at).replace(tzinfo=UTC) if at else datetime.now(UTC)
    except ValueError:
        raise typer.BadParameter(
            "an ISO date-time like 2027-06-12T09:55", param_hint="--at"
        ) from None
    model = TrafficModel(base_rps=base_rps, per_wedding_rps=per_wedding_rps)
    autoscaler = WeddingAutoscaler(Forecaster(model), replica_rps * 0.7)
    decision = autoscaler.decide(
        Observation(
            moment.timestamp(), current, current, rps, None, min(1.0, rps / (current * replica_rps))
        )
    )
    console.print(f"{decision.replicas} replicas — {decision.reason}")
    if apply_to:
        from wedsync_perf.scaling.manifests import scale_deployment

        scale_deployment(apply_to, decision.replicas, namespace=namespace, dry_run=not live)
        console.print(f"{'scaled' if live else 'dry run accepted for'} {namespace}/{apply_to}")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
    app.add_typer(scale_app, name="scale")
