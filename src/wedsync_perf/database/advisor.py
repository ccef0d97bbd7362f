"""Index advice over a whole workload, not query by query.

1. Candidates from each SELECT: equality columns first, then one range or ORDER BY
   column (a b-tree serves `a = ? AND b = ? ORDER BY c` as (a, b, c)); single columns too;
   width at most 3. Candidates an existing index already leads with are dropped.
2. What-if costing: the planner's total cost of every workload query, weighted, with a
   set of indexes in place — HypoPG's hypothetical indexes when the extension exists,
   otherwise real indexes built inside a transaction that is always rolled back.
3. Greedy selection: repeatedly add the candidate that lowers the workload cost most,
   while it gains at least `min_gain` of the starting cost and fits the storage budget.

Nothing is created outside the rolled-back transaction: the output is
`CREATE INDEX CONCURRENTLY` statements with their estimated gain and size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

__all__ = ["Advice", "Candidate", "WorkloadQuery", "advise", "candidates"]


@dataclass(frozen=True)
class WorkloadQuery:
    sql: str
    args: tuple[Any, ...] = ()
    weight: float = 1.0  # e.g. calls per minute
    generic: bool = False  # plan without values (PostgreSQL 16+), as pg_stat_statements has it


@dataclass(frozen=True, order=True)
class Candidate:
    table: str
    columns: tuple[str, ...]

    @property
    def statement(self) -> str:
        return f"CREATE INDEX CONCURRENTLY ON {self.table} ({', '.join(self.columns)})"


@dataclass
class Suggestion:
    candidate: Candidate
    gain: float  # fraction of the starting workload cost removed by adding it
    size_bytes: int


@dataclass
class Advice:
    base_cost: float
    final_cost: float
    suggestions: list[Suggestion] = field(default_factory=list)
    whatif_calls: int = 0
    method: str = "rolled-back indexes"

    @property
    def relative_cost(self) -> float:
        return self.final_cost / self.base_cost if self.base_cost else 1.0


def _columns_of(node: Any, aliases: dict[str, str]) -> tuple[str, str] | None:
    from pglast import ast

    if not isinstance(node, ast.ColumnRef):
        return None
    fields: Any = node.fields or ()
    names = [str(f.sval) for f in fields if isinstance(f, ast.String)]
    if len(names) == 2 and names[0] in aliases:
        return aliases[names[0]], names[1]
    if len(names) == 1 and len(set(aliases.values())) == 1:
        return next(iter(aliases.values())), names[0]
    return None


def _collect_aliases(node: Any, aliases: dict[str, str]) -> None:
    from pglast import ast

    if isinstance(node, ast.RangeVar):
        relname = str(node.relname)
        alias: Any = node.alias
        aliases[str(alias.aliasname) if alias else relname] = relname
        aliases.setdefault(relname, relname)
    elif isinstance(node, ast.JoinExpr):
        _collect_aliases(node.larg, aliases)
        _collect_aliases(node.rarg, aliases)


def candidates(sql: str) -> set[Candidate]:
    """Index candidates one SELECT suggests (empty for anything else)."""
    from pglast import ast, parse_sql

    found: set[Candidate] = set()
    for raw in parse_sql(sql):
        statement = raw.stmt
        if not isinstance(statement, ast.SelectStmt):
            continue
        aliases: dict[str, str] = {}
        for item in statement.fromClause or ():
            _collect_aliases(item, aliases)
        equal: dict[str, list[str]] = {}
        ranged: dict[str, list[str]] = {}
        conjuncts: list[Any] = []
        where = statement.whereClause
        if isinstance(where, ast.BoolExpr) and where.boolop == 0:  # AND
            conjuncts = list(where.args or ())
        elif where is not None:
            conjuncts = [where]
        for expr in conjuncts:
            if not isinstance(expr, ast.A_Expr):
                continue
            operator = expr.name[0].sval if expr.name else ""
            column = _columns_of(expr.lexpr, aliases)
            if column is None or _columns_of(expr.rexpr, aliases) is not None:
                continue  # not column-vs-value (a join predicate, or unresolvable)
            table, name = column
            if operator == "=" and expr.kind == 0:
                equal.setdefault(table, []).append(name)
            elif operator in ("<", "<=", ">", ">=", "BETWEEN") or expr.kind == 10:
                ranged.setdefault(table, []).append(name)
        ordered: dict[str, list[str]] = {}
        for sort in statement.sortClause or ():
            sorted_column = _columns_of(sort.node, aliases)
            if sorted_column is not None:
                ordered.setdefault(sorted_column[0], []).append(sorted_column[1])
        for table in set(equal) | set(ranged) | set(ordered):
            eq = list(dict.fromkeys(equal.get(table, [])))
            tails = list(dict.fromkeys(ranged.get(table, []) + ordered.get(table, [])[:1]))
            for name in eq + tails:
                found.add(Candidate(table, (name,)))
            if eq:
                found.add(Candidate(table, tuple(eq[:3])))
                for tail in tails:
                    if tail not in eq:
                        found.add(Candidate(table, (*eq[:2], tail)))
    return found


async def _existing(conn: asyncpg.Connection) -> dict[str, list[tuple[str, ...]]]:
    rows = await conn.fetch(
        "SELECT t.relname AS tab, array_agg(a.attname ORDER BY k.ord) AS cols"
        " FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
        " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true"
        " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
        " WHERE t.relnamespace = 'public'::regnamespace GROUP BY i.indexrelid, t.relname"
    )
    existing: dict[str, list[tuple[str, ...]]] = {}
    for row in rows:
        existing.setdefault(row["tab"], []).append(tuple(row["cols"]))
    return existing


def _covered(candidate: Candidate, existing: dict[str, list[tuple[str, ...]]]) -> bool:
    width = len(candidate.columns)
    return any(index[:width] == candidate.columns for index in existing.get(candidate.table, []))


class _WhatIf:
    def __init__(self, conn: asyncpg.Connection, workload: Sequence[WorkloadQuery]) -> None:
        self.conn = conn
        self.workload = workload
        self.calls = 0
        self.hypopg = False
        self.sizes: dict[Candidate, int] = {}

    async def setup(self) -> None:
        try:
            await self.conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
            self.hypopg = True
        except asyncpg.PostgresError:
            self.hypopg = False

    async def cost(self, indexes: Sequence[Candidate]) -> float:
        """Weighted planner cost of the workload with `indexes` in place."""
        self.calls += 1
        transaction = self.conn.transaction()
        await transaction.start()
        try:
            for candidate in indexes:
                create = candidate.statement.replace(" CONCURRENTLY", "")
                if self.hypopg:
                    row = await self.conn.fetchrow(
                        "SELECT indexrelid, hypopg_relation_size(indexrelid) AS size"
                        " FROM hypopg_create_index($1)",
                        create,
                    )
                    self.sizes.setdefault(candidate, int(row["size"]) if row else 0)
                else:
                    name = f"wsp_whatif_{abs(hash(candidate)) % 10**9}"
                    await self.conn.execute(
                        create.replace("CREATE INDEX ON", f"CREATE INDEX {name} ON")
                    )
                    size = await self.conn.fetchval("SELECT pg_relation_size($1::regclass)", name)
                    self.sizes.setdefault(candidate, int(size or 0))
            total = 0.0
            for query in self.workload:
                options = "FORMAT JSON, GENERIC_PLAN" if query.generic else "FORMAT JSON"
                args = query.args
                if query.generic and not args:
                    count = max((int(n) for n in re.findall(r"\$(\d+)", query.sql)), default=0)
                    args = tuple([None] * count)
                raw = await self.conn.fetchval(f"EXPLAIN ({options}) {query.sql}", *args)
                plan = json.loads(raw) if isinstance(raw, str) else raw
                total += query.weight * float(plan[0]["Plan"]["Total Cost"])
            return total
        finally:
            await transaction.rollback()
            if self.hypopg:
                await self.conn.execute("SELECT hypopg_reset()")


async def advise(
    conn: asyncpg.Connection,
    workload: Sequence[WorkloadQuery],
    *,
    budget_bytes: int = 512 * 1024 * 1024,
    min_gain: float = 0.01,
    max_indexes: int = 8,
) -> Advice:
    """Greedy index selection for `workload` (see the module docstring)."""
    whatif = _WhatIf(conn, workload)
    await whatif.setup()
    existing = await _existing(conn)
    pool = sorted(
        {c for q in workload for c in candidates(q.sql)} - set(),
        key=lambda c: (c.table, c.columns),
    )
    pool = [c for c in pool if not _covered(c, existing)]
    base = await whatif.cost([])
    advice = Advice(base, base, method="hypopg" if whatif.hypopg else "rolled-back indexes")
    chosen: list[Candidate] = []
    current, used = base, 0
    while pool and len(chosen) < max_indexes:
        best: tuple[float, Candidate] | None = None
        for candidate in pool:
            cost = await whatif.cost([*chosen, candidate])
            if best is None or cost < best[0]:
                best = (cost, candidate)
        assert best is not None
        cost, candidate = best
        size = whatif.sizes.get(candidate, 0)
        if (current - cost) < min_gain * base or used + size > budget_bytes:
            break
        chosen.append(candidate)
        pool.remove(candidate)
        advice.suggestions.append(Suggestion(candidate, (current - cost) / base, size))
        current, used = cost, used + size
    # Local search: greedy can lock in a wide index early where a narrower one plus
    # another would do better; try swapping each chosen index for each one left out.
    improved = True
    while improved and chosen:
        improved = False
        for i, candidate in enumerate(list(chosen)):
            for other in list(pool):
                trial = [*chosen[:i], other, *chosen[i + 1 :]]
                cost = await whatif.cost(trial)
                size = sum(whatif.sizes.get(c, 0) for c in trial)
                if cost < current - min_gain * base * 0.1 and size <= budget_bytes:
                    chosen, current, improved = trial, cost, True
                    pool.remove(other)
                    pool.append(candidate)
                    break
            if improved:
                break
    advice.suggestions = await _attribute(whatif, chosen, base)
    advice.final_cost = current
    advice.whatif_calls = whatif.calls
    return advice


async def _attribute(whatif: _WhatIf, chosen: list[Candidate], base: float) -> list[Suggestion]:
    """Each chosen index with its marginal gain, in the order they were chosen."""
    suggestions = []
    previous = base
    for i, candidate in enumerate(chosen):
        cost = await whatif.cost(chosen[: i + 1])
        suggestions.append(
            Suggestion(candidate, (previous - cost) / base, whatif.sizes.get(candidate, 0))
        )
        previous = cost
    return suggestions
