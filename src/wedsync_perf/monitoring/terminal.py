"""Rich rendering of a `/perf/stats` summary: the demo's live view and `wedsync-perf top`."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

__all__ = ["render_stats"]

_STYLE = {"critical": "bold magenta", "standard": "cyan", "bulk": "dim"}


def _ms(value: float | None, target_ms: float | None = None) -> Text:
    if value is None:
        return Text("–")
    text = Text(f"{value:,.1f}")
    if target_ms is not None and value > target_ms:
        text.stylize("bold red")
    return text


def _target(priority: str, stats: dict[str, Any]) -> float:
    slo = stats.get("slo_ms", {})
    if priority == "critical" and stats.get("regime") == "wedding_day":
        return float(slo.get("critical_wedding_day", 100))
    return float(slo.get("default", 200))


def render_stats(stats: dict[str, Any], title: str = "WedSync API (server-side)") -> Table:
    """Per route: class, req/s, peak, p50/p95/p99 (ms, red above its target), share of
    requests under target, 5xx, response-cache hit ratio; per-class totals underneath, and
    the query cache's hit ratio when the app reports one."""
    regime = str(stats.get("regime", "?")).replace("_", " ")
    table = Table(
        title=f"{title} · last {stats.get('span_s', 0):.0f} s · {stats.get('scope', '?')} · {regime}",
        title_justify="left",
    )
    table.add_column("route", no_wrap=True, min_width=30)
    table.add_column("class")
    for name in ("req/s", "peak/s", "p50 ms", "p95 ms", "p99 ms", "≤ target", "5xx", "cache"):
        table.add_column(name, justify="right")
    for route in stats.get("routes", []):
        priority = route["priority"]
        target = _target(priority, stats)
        under = route.get("under_ms", {}).get(f"{target:g}")
        table.add_row(
            f"{route['method']} {route['route']}",
            Text(priority, style=_STYLE.get(priority, "")),
            f"{route['rps']:,.1f}",
            f"{route['peak_rps']:,.1f}",
            _ms(route["p50_ms"], target),
            _ms(route["p95_ms"], target),
            _ms(route["p99_ms"], target),
            "–" if under is None else f"{under:.1%}",
            Text(str(route["errors"]), style="red" if route["errors"] else ""),
            f"{route['cache_hit_ratio']:.0%}",
        )
    if stats.get("classes"):
        table.add_section()
        for cls in stats["classes"]:
            priority = cls["priority"]
            target = _target(priority, stats)
            under = cls.get("under_ms", {}).get(f"{target:g}")
            table.add_row(
                Text(f"all {priority}", style="bold"),
                Text(priority, style=_STYLE.get(priority, "")),
                f"{cls['rps']:,.1f}",
                "",
                _ms(cls["p50_ms"], target),
                _ms(cls["p95_ms"], target),
                _ms(cls["p99_ms"], target),
                "–" if under is None else f"{under:.1%}",
                Text(str(cls["errors"]), style="red" if cls["errors"] else ""),
                "",
            )
    caption = f"in flight: {stats.get('in_flight', 0)}"
    queries = stats.get("query_cache") or {}
    if queries.get("hit_ratio") is not None:  # the app reports its query cache
        caption += f" · query cache: {queries['hit_ratio']:.0%} of {queries['hits'] + queries['misses']:,} reads"
    table.caption = caption
    return table
