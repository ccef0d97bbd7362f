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
    """The statement with table aliases renamed a1, a2, … in FROM order.

    The aliases come from libpg_query's JSON parse tree (a few µs; building pglast's
    Python AST and printing it back costs ~50x more), and are renamed wherever the
    scanner sees them as identifiers. A column that shares an alias's name is renamed
    too — consistently, so one shape still gets one fingerprint.
    """
    import json

    from pglast import parser

    tree = parser.parse_sql_json(sql)
    if '"aliasname"' not in tree:
        return sql
    names: dict[str, str] = {}
    _collect_aliases(json.loads(tree), names)
    pieces: list[str] = []
    position = 0
    for token in parser.scan(sql):
        if token.name != "IDENT":
            continue
        text = sql[token.start : token.end + 1]
        key = text[1:-1] if text.startswith('"') else text.lower()
        if key in names:
            pieces += [sql[position : token.start], names[key]]
            position = token.end + 1
    pieces.append(sql[position:])
    return "".join(pieces)


def _collect_aliases(node: Any, names: dict[str, str]) -> None:
    # Depth-first in document order: FROM items appear in the order they were written.
    if isinstance(node, dict):
        alias = node.get("alias")
        if isinstance(alias, dict) and "aliasname" in alias:
            names.setdefault(alias["aliasname"], f"a{len(names) + 1}")
        for value in node.values():
            _collect_aliases(value, names)
    elif isinstance(node, list):
        for value in node:
            _collect_aliases(value, names)


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
