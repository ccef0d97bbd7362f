"""Route templates and priorities for Starlette/FastAPI requests, resolved in O(1).

After the application has routed a request, Starlette and FastAPI leave the matched
route object in `scope["route"]`. Its own `path` is not enough: FastAPI ≥ 0.137 keeps
`include_router` prefixes outside the route (prometheus-fastapi-instrumentator #371),
mounted sub-apps have paths relative to their mount (#389), and `root_path` must not
leak into labels (#387). So the resolver walks the route tree once — through included
routers and mounts — and maps each route object to its full template; the request path
then costs one dict lookup. A route reachable under several prefixes (the same router
included twice) is disambiguated by matching the request path against those few
templates only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from wedsync_perf.priorities import PriorityClass, declared_priority, effective_routes

__all__ = ["ResolvedRoute", "RouteResolver", "template_regex"]

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-zA-Z_][a-zA-Z0-9_]*)?}")


@dataclass(frozen=True, slots=True)
class ResolvedRoute:
    template: str
    priority: str  # a PriorityClass value, kept as str for the hot path


@dataclass(frozen=True, slots=True)
class _Candidate:
    resolved: ResolvedRoute
    pattern: re.Pattern[str]


def template_regex(template: str, param: str = "[^/]+") -> re.Pattern[str]:
    """The paths `template` matches: each `{name}` as `param` (one segment unless given
    another pattern), `{name:path}` as anything."""
    parts, at = [], 0
    for match in _PARAM.finditer(template):
        parts.append(re.escape(template[at : match.start()]))
        parts.append(param if ":path" not in match.group(0) else ".*")
        at = match.end()
    parts.append(re.escape(template[at:]))
    return re.compile("".join(parts))


def _clean(template: str) -> str:
    """`/items/{id:int}` → `/items/{id}`: converters are not part of the label."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", template)


class RouteResolver:
    """Maps matched route objects to (template, priority). Build once per app; the
    table is rebuilt only when a route object appears that it has not seen."""

    def __init__(self, default_priority: PriorityClass = PriorityClass.STANDARD) -> None:
        self._default = default_priority.value
        self._table: dict[int, list[_Candidate]] = {}
        self._built_for: int | None = None
        self._keepalive: list[object] = []  # route objects whose id() keys the table

    def build(self, routes: Iterable[Any]) -> None:
        table: dict[int, list[_Candidate]] = {}
        keep: list[object] = []
        self._walk(list(routes), "", table, keep, depth=0)
        self._table, self._keepalive = table, keep

    def _walk(
        self,
        routes: list[Any],
        prefix: str,
        table: dict[int, list[_Candidate]],
        keep: list[object],
        depth: int,
    ) -> None:
        if depth > 16:  # a mount cycle would recurse forever
            return
        for context in effective_routes(routes):
            original = getattr(context, "original_route", context)
            path = getattr(context, "path_format", None) or getattr(context, "path", None)
            if not isinstance(path, str):
                continue
            children = getattr(original, "routes", None)
            if children is not None and not getattr(original, "methods", None):
                # A Mount: its routes sit under its plain path (path_format adds {path}).
                mount_path = str(getattr(context, "path", "")).rstrip("/")
                self._walk(list(children), prefix + mount_path, table, keep, depth + 1)
                continue
            template = _clean(prefix + path)
            try:
                priority = declared_priority(context) or declared_priority(original)
            except ValueError:
                priority = None
            resolved = ResolvedRoute(template, priority.value if priority else self._default)
            table.setdefault(id(original), []).append(
                _Candidate(resolved, template_regex(template))
            )
            keep.append(original)

    def resolve(
        self, scope: MutableMapping[str, Any], entry_root_path: str
    ) -> ResolvedRoute | None:
        """The template of the route that handled `scope`, or None if none matched."""
        route = scope.get("route")
        if route is None:
            return None
        candidates = self._table.get(id(route))
        if candidates is None:
            router = scope.get("router")
            routes = getattr(router, "routes", None)
            if routes is not None and self._built_for != id(route):
                self._built_for = id(route)  # rebuild at most once per unknown route
                self.build(routes)
                candidates = self._table.get(id(route))
            if candidates is None:
                path = getattr(route, "path_format", None) or getattr(route, "path", None)
                if not isinstance(path, str):
                    return None
                return ResolvedRoute(_clean(path), self._default)
        if len(candidates) == 1:
            return candidates[0].resolved
        path = str(scope.get("path", ""))
        if entry_root_path and path.startswith(entry_root_path):
            path = path[len(entry_root_path) :]
        for candidate in candidates:
            if candidate.pattern.fullmatch(path):
                return candidate.resolved
        return candidates[0].resolved
