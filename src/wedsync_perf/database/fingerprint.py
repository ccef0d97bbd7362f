"""Query fingerprints: one identity per query *shape*, whatever its literals, IN-list
lengths or table aliases — via libpg_query (pglast), PostgreSQL's own parser.

`fingerprint(sql)` parses a text the first time it is seen and is a dict lookup after
(memoised, bounded): applications send a few hundred distinct statement texts. Only the
text is ever looked at; parameters are never stored.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["fingerprint", "shape"]

_MEMO: dict[str, tuple[str, str]] = {}
_MAX_MEMO = 20_000


def _canonical_aliases(sql: str) -> str:
    """The statement re-printed with table aliases renamed a1, a2, … in order."""
    from pglast import ast, parse_sql
    from pglast.stream import RawStream
    from pglast.visitors import Visitor

    statements = parse_sql(sql)
    names: dict[str, str] = {}

    class Rename(Visitor):
        def visit_RangeVar(self, ancestors: Any, node: Any) -> None:
            if node.alias is not None and node.alias.aliasname not in names:
                names[node.alias.aliasname] = f"a{len(names) + 1}"
            if node.alias is not None:
                node.alias = ast.Alias(aliasname=names[node.alias.aliasname])

        def visit_ColumnRef(self, ancestors: Any, node: Any) -> None:
            fields = list(node.fields or ())
            if len(fields) > 1 and isinstance(fields[0], ast.String) and fields[0].sval in names:
                fields[0] = ast.String(sval=names[fields[0].sval])
                node.fields = tuple(fields)

    for statement in statements:
        Rename()(statement)
    return ";".join(RawStream()(s) for s in statements)


def _compute(sql: str) -> tuple[str, str]:
    from pglast import parser

    try:
        canonical = _canonical_aliases(sql)
    except Exception:  # not parseable as PostgreSQL: fall back to the text itself
        digest = hashlib.sha256(" ".join(sql.split()).lower().encode()).hexdigest()[:16]
        return digest, " ".join(sql.split())[:200]
    return parser.fingerprint(canonical), parser.normalize(canonical)[:500]


def fingerprint(sql: str) -> str:
    """16 hex characters identifying the query's shape."""
    return _lookup(sql)[0]


def shape(sql: str) -> str:
    """The normalised statement (constants as $n, aliases canonical), for findings."""
    return _lookup(sql)[1]


def _lookup(sql: str) -> tuple[str, str]:
    found = _MEMO.get(sql)
    if found is None:
        found = _compute(sql)
        if len(_MEMO) >= _MAX_MEMO:
            _MEMO.clear()
        _MEMO[sql] = found
    return found
