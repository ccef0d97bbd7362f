"""Query fingerprints: libpg_query (pglast, what we use) vs sqlglot, on the reference
API's statement shapes and variants of them (other literals, IN-lists of 1 to 50 items,
other table aliases). Reports whether each tool collapses every variant of a shape to
one fingerprint and keeps different shapes apart, and the cost per statement: the first
time a text is seen (a full parse) and afterwards (our memo: a dict lookup).

Run: `make bench-fingerprint` (no database needed).
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, versions, write_result
from wedsync_perf.database import fingerprint as ours

ROUNDS = 7


def shapes() -> list[list[str]]:
    """Groups of texts; every text in a group is the same shape."""
    groups = [
        [f"SELECT wedding_date FROM weddings WHERE tenant_id = {t} AND id = {w}"
         for t, w in ((1, 5), (2, 77), (40, 123456))],
        [f"SELECT s.id, s.name FROM suppliers {a} JOIN wedding_suppliers ws ON ws.supplier_id"
         f" = {a}.id WHERE ws.wedding_id = {w}".replace("s.id, s.name", f"{a}.id, {a}.name")
         for a, w in (("s", 1), ("sup", 9), ("x", 12345))],
        [f"SELECT id, title FROM timeline_items WHERE wedding_id IN ({', '.join(map(str, range(1, n + 1)))})"
         for n in (1, 2, 7, 50)],
        [f"SELECT id FROM suppliers WHERE tenant_id = {t} AND category = '{c}' AND price_band <= {p}"
         f" ORDER BY rating DESC NULLS LAST, id LIMIT 21" for t, c, p in ((1, "florist", 2), (3, "dj", 4))],
        [f"INSERT INTO messages (tenant_id, wedding_id, sender, body) VALUES ({t}, {w}, '{s}', '{b}')"
         for t, w, s, b in ((1, 2, "ann", "hi"), (5, 6, "bob", "see you at 4"))],
        [f"UPDATE wedding_suppliers SET arrival_status = '{s}' WHERE tenant_id = {t} AND wedding_id = {w}"
         for s, t, w in (("arrived", 1, 2), ("late", 3, 4))],
        [f"SELECT day FROM venue_bookings WHERE venue_id = {v} AND day BETWEEN '{a}' AND '{b}'"
         for v, a, b in ((1, "2027-06-01", "2027-06-30"), (9, "2027-01-01", "2027-12-31"))],
    ]  # fmt: skip
    return groups


def sqlglot_fingerprint(sql: str) -> str:
    """The same normalisation done with sqlglot: literals and IN-lists to one
    placeholder, table aliases renamed in order, then a hash of the printed tree."""
    from sqlglot import exp, parse_one

    tree = parse_one(sql, dialect="postgres")
    renamed: dict[str, str] = {}
    for table in tree.find_all(exp.Table):
        if table.alias:
            renamed.setdefault(table.alias, f"a{len(renamed) + 1}")
            table.set("alias", exp.TableAlias(this=exp.to_identifier(renamed[table.alias])))
    for column in tree.find_all(exp.Column):
        if column.table in renamed:
            column.set("table", exp.to_identifier(renamed[column.table]))
    for in_expr in tree.find_all(exp.In):
        if in_expr.expressions:
            in_expr.set("expressions", [exp.Placeholder()])
    for literal in list(tree.find_all(exp.Literal)):
        literal.replace(exp.Placeholder())
    return hashlib.sha256(tree.sql(dialect="postgres").encode()).hexdigest()[:16]


def pglast_cold(sql: str) -> str:
    return ours._compute(sql)[0]


def separation(tool: Callable[[str], str]) -> dict[str, bool]:
    groups = shapes()
    per_group = [{tool(sql) for sql in group} for group in groups]
    collapsed = all(len(ids) == 1 for ids in per_group)
    distinct = len({next(iter(ids)) for ids in per_group}) == len(groups) if collapsed else False
    return {"variants_collapse": collapsed, "shapes_stay_apart": distinct}


def per_statement_us(tool: Callable[[str], str], texts: list[str]) -> float:
    """Median over rounds of the mean cost per statement."""
    results = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for sql in texts:
            tool(sql)
        results.append((time.perf_counter() - started) / len(texts) * 1e6)
    return statistics.median(results)


def main() -> None:
    texts = [sql for group in shapes() for sql in group] * 20
    for tool in (pglast_cold, sqlglot_fingerprint):  # warm imports and caches
        tool(texts[0])
    ours.fingerprint(texts[0])
    memo_texts = texts * 10
    for sql in memo_texts:
        ours.fingerprint(sql)
    figures = {
        "statements": len(shapes()),
        "texts": sum(len(g) for g in shapes()),
        "correctness": {
            "pglast": separation(pglast_cold),
            "sqlglot": separation(sqlglot_fingerprint),
        },
        "cold_us_per_statement": {
            "pglast": round(per_statement_us(pglast_cold, texts), 1),
            "sqlglot": round(per_statement_us(sqlglot_fingerprint, texts), 1),
        },
        "memoised_us_per_statement": round(per_statement_us(ours.fingerprint, memo_texts), 3),
        "versions": versions("pglast", "sqlglot"),
        "machine": machine(),
    }
    ratio = figures["cold_us_per_statement"]["sqlglot"] / figures["cold_us_per_statement"]["pglast"]
    figures["sqlglot_over_pglast"] = round(ratio, 1)
    path = write_result("fingerprint", figures)
    for tool in ("pglast", "sqlglot"):
        print(
            f"{tool:8s} cold {figures['cold_us_per_statement'][tool]:8.1f} µs/statement"
            f"  {figures['correctness'][tool]}"
        )
    print(f"sqlglot / pglast: {ratio:.1f}x; memoised lookup"
          f" {figures['memoised_us_per_statement']} µs; wrote {path}")  # fmt: skip


if __name__ == "__main__":
    main()
