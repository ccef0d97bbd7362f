"""The closing client-side summary of a load run (the live view is the server's own:
`wedsync_perf.monitoring.terminal`)."""

from __future__ import annotations

from rich.table import Table

from wedsync_perf.loadgen.stats import EndpointStats, LoadStats
from wedsync_perf.priorities import PriorityClass

__all__ = ["render_summary"]

_CLASS_STYLE = {
    PriorityClass.CRITICAL: "bold magenta",
    PriorityClass.STANDARD: "cyan",
    PriorityClass.BULK: "dim",
}


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def _row(stats: EndpointStats, rps: float) -> list[str]:
    return [
        f"{rps:,.1f}",
        f"{stats.count:,}",
        _ms(stats.quantile_ms(0.50)),
        _ms(stats.quantile_ms(0.95)),
        _ms(stats.quantile_ms(0.99)),
        f"[red]{stats.errors:,}[/]" if stats.errors else "0",
    ]


def render_summary(stats: LoadStats, title: str = "Summary by priority class") -> Table:
    """Per priority class over the whole run: mean requests/s, percentiles, errors."""
    table = Table(title=title, title_justify="left")
    table.add_column("class")
    for name in ("req/s", "total", "p50 ms", "p95 ms", "p99 ms", "errors"):
        table.add_column(name, justify="right")
    elapsed = stats.elapsed_s()
    merged = stats.by_class()
    for priority in sorted(merged, key=lambda p: p.rank):
        cls = merged[priority]
        table.add_row(
            f"[{_CLASS_STYLE[priority]}]{priority.value}[/]", *_row(cls, cls.count / elapsed)
        )
    return table
