"""What `db report` and `db advise` say about a database, as data (`as_dict()` for
JSON): a command only prints or emits it, and any other front end gets the same figures.

The report reads pg_stat_statements (statement shapes by total time, with plan findings),
the catalog (indexes that cost writes for nothing) and the index advisor. The advisor's
workload is the statements pg_stat_statements saw where generic plans can cost them;
otherwise, or when measuring (which needs real parameter values), the application's own
reference workload.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from wedsync_perf.database import statements
from wedsync_perf.database.advisor import (
    IndexFinding,
    WorkloadQuery,
    advise,
    existing_findings,
    measure_workload,
)
from wedsync_perf.database.explain import explain, findings, table_rows

__all__ = [
    "AdviceReport",
    "DatabaseReport",
    "IndexSuggestion",
    "MeasuredWorkload",
    "WorkloadSource",
    "database_report",
    "index_advice",
    "supports_generic_plans",
]

WorkloadSource = Callable[[asyncpg.Connection], Awaitable[list[WorkloadQuery]]]
"""The application's reference read workload, each statement with real values."""

_OBSERVED_STATEMENTS = 25  # the advisor's workload: the top shapes by total time


@dataclass(frozen=True)
class IndexSuggestion:
    statement: str
    requires_extension: str | None
    gain: float  # fraction of the workload's cost it removes, rounded as reported
    size_bytes: int
    table_writes: int


@dataclass(frozen=True)
class MeasuredWorkload:
    now: float  # ms
    with_suggestions: float  # ms


@dataclass
class AdviceReport:
    workload: str  # "pg_stat_statements" or "reference workload"
    queries: int
    skipped_unplannable: int
    method: str
    relative_cost: float
    whatif_calls: int
    suggestions: list[IndexSuggestion]
    measured_workload_ms: MeasuredWorkload | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; `measured_workload_ms` only when measured."""
        out = asdict(self)
        if self.measured_workload_ms is None:
            del out["measured_workload_ms"]
        return out


@dataclass
class DatabaseReport:
    seconds: float
    pg_stat_statements: bool
    # statements.as_dict rows, with "findings" (PlanFinding fields) when planned or
    # "findings_unavailable"; None without pg_stat_statements.
    statements: list[dict[str, Any]] | None = None
    existing_indexes: list[IndexFinding] = field(default_factory=list)
    index_advice: AdviceReport | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; what was not gathered is left out, not null."""
        out: dict[str, Any] = {
            "seconds": self.seconds,
            "pg_stat_statements": self.pg_stat_statements,
        }
        if self.statements is not None:
            out["statements"] = self.statements
        out["existing_indexes"] = [asdict(f) for f in self.existing_indexes]
        if self.index_advice is not None:
            out["index_advice"] = self.index_advice.as_dict()
        return out


async def supports_generic_plans(conn: asyncpg.Connection) -> bool:
    """EXPLAIN (GENERIC_PLAN), which plans a statement without its values as
    pg_stat_statements records it, needs PostgreSQL 16."""
    return int(await conn.fetchval("SHOW server_version_num")) >= 160000


async def database_report(
    conn: asyncpg.Connection,
    reference: WorkloadSource,
    *,
    seconds: float = 0,
    limit: int = 15,
    explain_plans: bool = False,
    advise_indexes: bool = True,
    measure: bool = False,
    budget_bytes: int = 512 * 1024 * 1024,
) -> DatabaseReport:
    """The top `limit` statement shapes over the next `seconds` (0: since statistics
    were reset), plan findings for each with `explain_plans`, the existing indexes'
    findings, and index advice (see `index_advice`)."""
    report = DatabaseReport(seconds, await statements.available(conn))
    if report.pg_stat_statements:
        before = await statements.snapshot(conn) if seconds else None
        if seconds:
            await asyncio.sleep(seconds)  # the measurement window asked for
        after = await statements.snapshot(conn)
        listed = [statements.as_dict(s) for s in statements.top(after, before, limit)]
        if explain_plans:
            await _plan_findings(conn, listed)
        report.statements = listed
    report.existing_indexes = await existing_findings(conn)
    if advise_indexes:
        report.index_advice = await index_advice(
            conn, reference, budget_bytes=budget_bytes, measure=measure
        )
    return report


async def _plan_findings(conn: asyncpg.Connection, listed: list[dict[str, Any]]) -> None:
    """Generic plans need no parameter values: every shape can be planned as recorded."""
    if not await supports_generic_plans(conn):
        for row in listed:
            row["findings_unavailable"] = "generic plans need PostgreSQL 16 or newer"
        return
    sizes = await table_rows(conn)
    for row in listed:
        try:
            plan = await explain(conn, row["shape"], generic=True)
        except (ValueError, asyncpg.PostgresError, asyncpg.InterfaceError):
            continue  # a write, a utility statement, or not plannable alone
        row["findings"] = [asdict(f) for f in findings(plan, sizes)]


async def index_advice(
    conn: asyncpg.Connection,
    reference: WorkloadSource,
    *,
    budget_bytes: int = 512 * 1024 * 1024,
    measure: bool = False,
) -> AdviceReport:
    """Indexes worth building within `budget_bytes`, costed by the planner (nothing is
    created); with `measure`, the workload also timed with them built in a rolled-back
    transaction, which holds write locks meanwhile."""
    workload = [] if measure else await _observed_reads(conn)
    source = "pg_stat_statements"
    if not workload:
        workload, source = await reference(conn), "reference workload"
    advice = await advise(conn, workload, budget_bytes=budget_bytes)
    report = AdviceReport(
        workload=source,
        queries=len(workload) - advice.skipped,
        skipped_unplannable=advice.skipped,
        method=advice.method,
        relative_cost=round(advice.relative_cost, 4),
        whatif_calls=advice.whatif_calls,
        suggestions=[
            IndexSuggestion(
                statement=s.candidate.statement,
                requires_extension=s.candidate.requires,
                gain=round(s.gain, 4),
                size_bytes=s.size_bytes,
                table_writes=s.table_writes,
            )
            for s in advice.suggestions
        ],
    )
    if measure and advice.suggestions:
        chosen = [s.candidate for s in advice.suggestions]
        report.measured_workload_ms = MeasuredWorkload(
            now=round(await measure_workload(conn, workload), 3),
            with_suggestions=round(await measure_workload(conn, workload, chosen), 3),
        )
    return report


async def _observed_reads(conn: asyncpg.Connection) -> list[WorkloadQuery]:
    """The reads pg_stat_statements saw, weighted by calls; none where they cannot be
    planned without values."""
    if not (await supports_generic_plans(conn) and await statements.available(conn)):
        return []
    top = statements.top(await statements.snapshot(conn), limit=_OBSERVED_STATEMENTS)
    return [
        WorkloadQuery(s.shape, weight=s.calls, generic=True)
        for s in top
        if s.shape.upper().startswith("SELECT")
    ]
