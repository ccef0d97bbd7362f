"""Index advice over a whole workload, not query by query.

1. Candidates from each SELECT: equality columns first, then one range or ORDER BY
   column (a b-tree serves `a = ? AND b = ? ORDER BY c` as (a, b, c)); single columns too;
   width at most 3. A filter on a constant (`status <> 'cancelled'`, the hot-status
   shape) also yields partial indexes with that predicate; `LIKE`/`ILIKE` on a column
   yields a trigram GIN index (pg_trgm), the only kind that serves `%term%`.
   Candidates an existing index already leads with are dropped.
2. What-if costing: the planner's total cost of every workload query, weighted, with a
   set of indexes in place — HypoPG's hypothetical indexes when the extension exists
   (b-trees, partial ones included), otherwise, and always for GIN, which HypoPG cannot
   model, real indexes built inside a transaction that is always rolled back.
3. Greedy selection: repeatedly add the candidate that lowers the workload cost most,
   while it removes at least `min_gain` of the cost still left and fits the storage
   budget. Relative to what is left, not to the start: once one index has removed 97 %
   of the cost, the vendor-list index that halves the rest is still worth having —
   a bar against the starting cost (or Dexter's 50 % per query) would hide it.

Nothing is created outside the rolled-back transaction: the output is
`CREATE INDEX CONCURRENTLY` statements with their estimated gain, size and the write
traffic they would add to. `existing_findings` reports indexes that cost writes for
nothing: duplicates, ones another index covers, ones never scanned.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

__all__ = [
    "Advice",
    "Candidate",
    "IndexFinding",
    "WorkloadQuery",
    "advise",
    "candidates",
    "existing_findings",
    "measure_workload",
]


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
    method: str = "btree"  # or "gin_trgm": GIN with pg_trgm's gin_trgm_ops
    where: str = ""  # partial index predicate, as SQL

    @property
    def statement(self) -> str:
        if self.method == "gin_trgm":
            body = f"USING gin ({', '.join(f'{c} gin_trgm_ops' for c in self.columns)})"
        else:
            body = f"({', '.join(self.columns)})"
        tail = f" WHERE {self.where}" if self.where else ""
        return f"CREATE INDEX CONCURRENTLY ON {self.table} {body}{tail}"

    @property
    def requires(self) -> str | None:
        """An extension the index needs (`CREATE EXTENSION` it first)."""
        return "pg_trgm" if self.method == "gin_trgm" else None


@dataclass
class Suggestion:
    candidate: Candidate
    gain: float  # fraction of the starting workload cost removed by adding it
    size_bytes: int
    table_writes: int = 0  # rows written to the table since statistics were reset


@dataclass(frozen=True)
class IndexFinding:
    kind: str  # duplicate | covered | unused
    index: str
    table: str
    detail: str
    suggestion: str


@dataclass
class Advice:
    base_cost: float
    final_cost: float
    suggestions: list[Suggestion] = field(default_factory=list)
    whatif_calls: int = 0
    method: str = "rolled-back indexes"
    skipped: int = 0  # workload statements the planner could not plan (left out)

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


def _collect_aliases(node: Any, aliases: dict[str, str], quals: list[Any]) -> None:
    """Table aliases of a FROM item, and its JOIN ... ON conditions into `quals`."""
    from pglast import ast

    if isinstance(node, ast.RangeVar):
        relname = str(node.relname)
        alias: Any = node.alias
        aliases[str(alias.aliasname) if alias else relname] = relname
        aliases.setdefault(relname, relname)
    elif isinstance(node, ast.JoinExpr):
        _collect_aliases(node.larg, aliases, quals)
        _collect_aliases(node.rarg, aliases, quals)
        if node.quals is not None:
            quals.append(node.quals)


def _conjuncts(where: Any) -> list[Any]:
    from pglast import ast

    if isinstance(where, ast.BoolExpr) and where.boolop == 0:  # AND
        return [c for arg in where.args or () for c in _conjuncts(arg)]
    return [] if where is None else [where]


def candidates(sql: str) -> set[Candidate]:
    """Index candidates one SELECT suggests (empty for anything else)."""
    from pglast import ast, parse_sql
    from pglast.parser import ParseError

    found: set[Candidate] = set()
    try:
        parsed = parse_sql(sql)
    except ParseError:  # pg_stat_statements truncates long texts: nothing to learn
        return found
    for raw in parsed:
        statement = raw.stmt
        if not isinstance(statement, ast.SelectStmt):
            continue
        aliases: dict[str, str] = {}
        quals: list[Any] = []
        for item in statement.fromClause or ():
            _collect_aliases(item, aliases, quals)
        equal: dict[str, list[str]] = {}
        ranged: dict[str, list[str]] = {}
        constant: dict[str, list[tuple[str, str]]] = {}  # table -> (column, predicate)
        conjuncts = _conjuncts(statement.whereClause)
        for qual in quals:
            conjuncts += _conjuncts(qual)
        for expr in conjuncts:
            if not isinstance(expr, ast.A_Expr):
                continue
            operator = expr.name[0].sval if expr.name else ""
            column = _columns_of(expr.lexpr, aliases)
            other = _columns_of(expr.rexpr, aliases)
            if column is not None and other is not None:
                if operator == "=" and column[0] != other[0]:  # a join: either side's key
                    found.update(Candidate(t, (c,)) for t, c in (column, other))
                continue
            if column is None:
                continue  # an expression we cannot attribute to a column
            table, name = column
            literal = _string_constant(expr.rexpr)
            if expr.kind in (_LIKE, _ILIKE):
                found.add(Candidate(table, (name,), method="gin_trgm"))
                continue
            if literal is not None and operator in ("=", "<>", "!="):
                constant.setdefault(table, []).append((name, f"{name} {operator} {literal}"))
                if operator != "=":
                    continue
            if operator == "=" and expr.kind == 0:
                equal.setdefault(table, []).append(name)
            elif operator in ("<", "<=", ">", ">=", "BETWEEN") or expr.kind == _BETWEEN:
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
            for filtered, predicate in constant.get(table, []):
                rest = [c for c in eq if c != filtered]
                for key in {tuple(rest[:2]), *((*rest[:1], t) for t in tails if t not in rest)}:
                    if key:
                        found.add(Candidate(table, tuple(key), where=predicate))
    return found


_LIKE, _ILIKE, _BETWEEN = 7, 8, 10  # pglast A_Expr_Kind values


def _string_constant(node: Any) -> str | None:
    """`'value'` (quoted SQL) when `node` is a string literal, else None."""
    from pglast import ast

    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return "'" + str(node.val.sval).replace("'", "''") + "'"
    return None


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
    if candidate.method != "btree" or candidate.where:
        return False  # only plain b-trees are compared by leading columns
    width = len(candidate.columns)
    return any(index[:width] == candidate.columns for index in existing.get(candidate.table, []))


class _WhatIf:
    def __init__(self, conn: asyncpg.Connection, workload: Sequence[WorkloadQuery]) -> None:
        self.conn = conn
        self.workload = list(workload)
        self.calls = 0
        self.hypopg = False
        self.trigram = False
        self.sizes: dict[Candidate, int] = {}

    async def setup(self) -> None:
        try:
            await self.conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
            self.hypopg = True
        except asyncpg.PostgresError:
            self.hypopg = False
        self.trigram = bool(
            await self.conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        )

    async def plan_cost(self, query: WorkloadQuery) -> float:
        options = "FORMAT JSON, GENERIC_PLAN" if query.generic else "FORMAT JSON"
        args = query.args
        if query.generic and not args:
            count = max((int(n) for n in re.findall(r"\$(\d+)", query.sql)), default=0)
            args = tuple([None] * count)
        raw = await self.conn.fetchval(f"EXPLAIN ({options}) {query.sql}", *args)
        plan = json.loads(raw) if isinstance(raw, str) else raw
        return float(plan[0]["Plan"]["Total Cost"])

    async def keep_plannable(self) -> int:
        """Drop the statements the planner rejects (truncated texts, types it cannot
        infer without values); return how many were dropped."""
        kept = []
        for query in self.workload:
            try:
                await self.plan_cost(query)
            except (asyncpg.PostgresError, asyncpg.InterfaceError):
                continue
            kept.append(query)
        dropped = len(self.workload) - len(kept)
        self.workload = kept
        return dropped

    async def cost(self, indexes: Sequence[Candidate]) -> float:
        """Weighted planner cost of the workload with `indexes` in place."""
        self.calls += 1
        transaction = self.conn.transaction()
        await transaction.start()
        try:
            for candidate in indexes:
                create = candidate.statement.replace(" CONCURRENTLY", "")
                if candidate.requires:
                    await self.conn.execute(f"CREATE EXTENSION IF NOT EXISTS {candidate.requires}")
                if self.hypopg and candidate.method == "btree":
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
                total += query.weight * await self.plan_cost(query)
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
    min_gain: float = 0.02,
    max_indexes: int = 8,
) -> Advice:
    """Greedy index selection for `workload` (see the module docstring)."""
    whatif = _WhatIf(conn, workload)
    await whatif.setup()
    skipped = await whatif.keep_plannable()
    workload = whatif.workload
    existing = await _existing(conn)
    pool = sorted(
        {c for q in workload for c in candidates(q.sql)} - set(),
        key=lambda c: (c.table, c.columns),
    )
    own_tables = {r["relname"] for r in await conn.fetch("SELECT relname FROM pg_stat_user_tables")}
    pool = [
        c
        for c in pool
        if c.table in own_tables  # never the system catalogs a monitoring query reads
        and not _covered(c, existing)
        and (whatif.trigram or c.method != "gin_trgm")
    ]
    base = await whatif.cost([])
    advice = Advice(base, base, method="hypopg" if whatif.hypopg else "rolled-back indexes")
    advice.skipped = skipped
    chosen: list[Candidate] = []
    current, used = base, 0
    while pool and len(chosen) < max_indexes:
        best: tuple[float, Candidate] | None = None
        for candidate in list(pool):
            try:
                cost = await whatif.cost([*chosen, candidate])
            except asyncpg.PostgresError:  # cannot be built here (rights, a view): skip it
                pool.remove(candidate)
                continue
            if best is None or cost < best[0]:
                best = (cost, candidate)
        if best is None:
            break
        cost, candidate = best
        size = whatif.sizes.get(candidate, 0)
        if (current - cost) < min_gain * current or used + size > budget_bytes:
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
                if cost < current * (1 - min_gain / 10) and size <= budget_bytes:
                    chosen, current, improved = trial, cost, True
                    pool.remove(other)
                    pool.append(candidate)
                    break
            if improved:
                break
    advice.suggestions = await _attribute(whatif, chosen, base)
    writes = await _table_writes(conn)
    for suggestion in advice.suggestions:
        suggestion.table_writes = writes.get(suggestion.candidate.table, 0)
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


async def _table_writes(conn: asyncpg.Connection) -> dict[str, int]:
    """Rows each table has had written since statistics were reset: each one would also
    be written into a new index (HOT updates aside)."""
    rows = await conn.fetch(
        "SELECT relname, n_tup_ins + n_tup_upd - n_tup_hot_upd + n_tup_del AS writes"
        " FROM pg_stat_user_tables WHERE schemaname = 'public'"
    )
    return {row["relname"]: int(row["writes"]) for row in rows}


async def existing_findings(
    conn: asyncpg.Connection, *, min_table_scans: int = 1000
) -> list[IndexFinding]:
    """Indexes that cost every write and serve nothing a sibling does not: exact
    duplicates, plain b-trees whose columns lead another index's, and indexes never
    scanned since statistics were reset — the last only on tables read at least
    `min_table_scans` times, so a freshly loaded database is not all "unused". Unique
    and primary-key indexes are never flagged: they enforce a constraint."""
    rows = await conn.fetch(
        "SELECT c.relname AS index, t.relname AS tab, i.indisunique AS is_unique,"
        " am.amname AS method, pg_get_expr(i.indpred, i.indrelid) AS predicate,"
        " i.indkey::text AS key, i.indclass::text AS opclass, i.indexprs IS NOT NULL AS expr,"
        " COALESCE(s.idx_scan, 0) AS scans, pg_relation_size(i.indexrelid) AS size,"
        " COALESCE(ts.seq_scan, 0) + COALESCE(ts.idx_scan, 0) AS table_scans"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_class t ON t.oid = i.indrelid JOIN pg_am am ON am.oid = c.relam"
        " LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid"
        " LEFT JOIN pg_stat_user_tables ts ON ts.relid = i.indrelid"
        " WHERE t.relnamespace = 'public'::regnamespace ORDER BY t.relname, c.relname"
    )
    findings: list[IndexFinding] = []
    flagged: set[str] = set()
    for row in rows:
        if row["expr"]:
            continue  # expression indexes are compared by nobody here
        mine, my_ops = row["key"].split(), row["opclass"].split()
        for other in rows:
            if other["index"] == row["index"] or other["tab"] != row["tab"] or other["expr"]:
                continue
            theirs, their_ops = other["key"].split(), other["opclass"].split()
            comparable = (row["method"], row["predicate"]) == (other["method"], other["predicate"])
            if not comparable or their_ops[: len(my_ops)] != my_ops or row["is_unique"]:
                continue
            if mine == theirs and row["index"] > other["index"]:
                kind, detail = "duplicate", f"same columns as {other['index']}"
            elif (
                row["method"] == "btree" and len(mine) < len(theirs) and theirs[: len(mine)] == mine
            ):
                kind, detail = "covered", f"its columns lead {other['index']}"
            else:
                continue
            findings.append(_drop(kind, row, detail))
            flagged.add(row["index"])
            break
    reset = await conn.fetchval(
        "SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()"
    )
    since = f"since {reset:%Y-%m-%d %H:%M}" if reset else "since statistics began"
    findings.extend(
        _drop("unused", row, f"never scanned {since}")
        for row in rows
        if row["scans"] == 0
        and row["table_scans"] >= min_table_scans
        and not row["is_unique"]
        and row["index"] not in flagged
    )
    return findings


def _drop(kind: str, row: Any, detail: str) -> IndexFinding:
    return IndexFinding(
        kind=kind,
        index=row["index"],
        table=row["tab"],
        detail=f"{detail}; {row['size'] / 1024:,.0f} kB",
        suggestion=f"DROP INDEX CONCURRENTLY {row['index']}",
    )


async def measure_workload(
    conn: asyncpg.Connection,
    workload: Sequence[WorkloadQuery],
    indexes: Sequence[Candidate] = (),
    *,
    repeats: int = 30,
    rounds: int = 5,
) -> float:
    """Measured, weighted workload time in ms (median of `rounds`) with `indexes` built
    for real inside a transaction that is then rolled back: nothing is left behind, but
    the build holds a SHARE lock on each table (writes wait), so run it on a copy or a
    replica-promoted clone, not on a busy primary."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        for candidate in indexes:
            if candidate.requires:
                await conn.execute(f"CREATE EXTENSION IF NOT EXISTS {candidate.requires}")
            await conn.execute(candidate.statement.replace(" CONCURRENTLY", ""))
        for table in {c.table for c in indexes}:
            await conn.execute(f"ANALYZE {table}")
        for query in workload:  # warm the buffer cache and the plan cache
            await conn.fetch(query.sql, *query.args)
        totals = []
        for _ in range(rounds):
            total = 0.0
            for query in workload:
                started = time.perf_counter()
                for _ in range(repeats):
                    await conn.fetch(query.sql, *query.args)
                total += query.weight * (time.perf_counter() - started) / repeats
            totals.append(total * 1000)
        return statistics.median(totals)
    finally:
        await transaction.rollback()
