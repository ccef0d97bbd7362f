"""The route table, compiled once at startup, and the one classifier that reads it.

Every stage of the pipeline needs to know which route a request is for — monitoring
for its label, admission control and the pool for its priority, the response cache for
its policy — and most must know it *before* the framework routes (a shed request or a
cache hit never reaches routing). So the app's routes are compiled once into a
`RouteTable` (templates with `include_router` prefixes and mount paths put back,
`root_path` left out), and `ClassifierMiddleware`, outermost, matches each request once
and leaves the `ResolvedRoute` in the scope. No other stage matches routes.

Matching follows the framework's order (the first route whose method and path match
wins), looking only at the routes that share the request's first path segment.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wedsync_perf.asgi import ASGIApp, Receive, Scope, Send
from wedsync_perf.errors import ConfigError
from wedsync_perf.priorities import (
    CACHE_EXTENSION,
    PriorityClass,
    declared_priority,
    effective_routes,
)

__all__ = [
    "PARAMS_KEY",
    "ROUTE_KEY",
    "CacheRule",
    "ClassifierMiddleware",
    "ResolvedRoute",
    "RouteTable",
    "path_params",
    "resolved_route",
    "template_regex",
]

ROUTE_KEY = "wedsync_perf.route"
"""Scope key of the request's `ResolvedRoute` (None when no route matched)."""
PARAMS_KEY = "wedsync_perf.path_params"
"""Scope key of the matched path parameters, as the strings the path held."""

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_][a-zA-Z0-9_]*))?}")
_CONVERTOR_REGEX = {
    "str": "[^/]+",
    "path": ".*",
    "int": "[0-9]+",
    "float": r"[0-9]+(?:\.[0-9]+)?",
    "uuid": "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
}
_MAX_DEPTH = 16  # a mount cycle would otherwise recurse forever


@dataclass(frozen=True, slots=True)
class CacheRule:
    """How the HTTP response cache keeps a route's 200 answers.

    `tags` are templates over the route's path parameters (`"wedding:{wedding_id}"`):
    a write that invalidates `wedding:7` drops every cached answer tagged so.
    `wedding_date_field` names the top-level JSON field holding the wedding's date,
    which makes the entry's TTL follow the wedding (see `caching.policy`).
    """

    data_class: str
    tags: tuple[str, ...] = ()
    wedding_date_field: str | None = None

    def extension(self) -> dict[str, Any]:
        """The rule as the JSON the route declares (and `/docs` shows)."""
        value: dict[str, Any] = {"data_class": self.data_class, "tags": list(self.tags)}
        if self.wedding_date_field:
            value["wedding_date_field"] = self.wedding_date_field
        return value

    @classmethod
    def from_extension(cls, value: object, template: str) -> CacheRule:
        """Parse a declaration; raises `ConfigError` naming the route when malformed."""
        where = f"route {template} ({CACHE_EXTENSION})"
        if not isinstance(value, Mapping) or not isinstance(value.get("data_class"), str):
            raise ConfigError(where, "expected an object with a 'data_class' string")
        tags = value.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ConfigError(where, "'tags' must be a list of strings")
        params = {m.group(1) for m in _PARAM.finditer(template)}
        for tag in tags:
            unknown = {m.group(1) for m in _PARAM.finditer(tag)} - params
            if unknown:
                raise ConfigError(where, f"tag {tag!r} names no path parameter of the route")
        field_name = value.get("wedding_date_field")
        if field_name is not None and not isinstance(field_name, str):
            raise ConfigError(where, "'wedding_date_field' must be a string")
        return cls(value["data_class"], tuple(tags), field_name)


@dataclass(frozen=True, slots=True)
class ResolvedRoute:
    """What every stage needs to know of a request's route, decided at startup.

    `public`: no API key is asked for (probes, docs, endpoints with a guard of their
    own). `internal`: probes and monitoring endpoints — not measured, never shed.
    """

    template: str
    priority: PriorityClass = PriorityClass.STANDARD
    cache: CacheRule | None = None
    public: bool = False
    internal: bool = False


@dataclass(frozen=True, slots=True)
class _Entry:
    route: ResolvedRoute
    methods: frozenset[str] | None  # None: any method (a mounted app)
    pattern: re.Pattern[str] | None  # None: a static path, compared as a string
    static: str
    first: str | None  # the first path segment, None when it is a parameter


@dataclass
class RouteTable:
    """Routes in the framework's matching order, bucketed by first path segment."""

    entries: list[_Entry] = field(default_factory=list)
    matched: int = 0  # lookups made: one per request is the contract
    _buckets: dict[str, list[_Entry]] = field(default_factory=dict, repr=False)
    _wild: list[_Entry] = field(default_factory=list, repr=False)

    @classmethod
    def compile(
        cls,
        routes: Iterable[Any],
        *,
        public: Collection[str] = (),
        internal: Collection[str] = (),
        default_priority: PriorityClass = PriorityClass.STANDARD,
    ) -> RouteTable:
        """The table of a Starlette/FastAPI app's routes (`app.routes`), through
        included routers and mounts. `public` and `internal` are templates (see
        `ResolvedRoute`); an internal route is public too. Raises `ConfigError` for a
        malformed priority or cache declaration."""
        table = cls()
        for template, methods, original, context in _walk(list(routes), "", 0):
            try:
                priority = declared_priority(context) or declared_priority(original)
            except ValueError as exc:
                raise ConfigError(f"route {template}", str(exc)) from None
            rule = _cache_rule(context, original, template)
            is_internal = template in internal
            resolved = ResolvedRoute(
                template=_clean(template),
                priority=priority or default_priority,
                cache=rule,
                public=is_internal or template in public,
                internal=is_internal,
            )
            table._add(resolved, methods, template)
        return table

    def _add(self, route: ResolvedRoute, methods: frozenset[str] | None, template: str) -> None:
        static = not _PARAM.search(template)
        first_segment = template[1:].split("/", 1)[0] if template.startswith("/") else ""
        entry = _Entry(
            route,
            methods,
            None if static else template_regex(template),
            template,
            None if "{" in first_segment else first_segment,
        )
        self.entries.append(entry)
        if entry.first is None:
            self._wild.append(entry)
            for bucket in self._buckets.values():
                bucket.append(entry)
        else:
            self._buckets.setdefault(entry.first, list(self._wild)).append(entry)

    def match(self, method: str, path: str) -> tuple[ResolvedRoute, dict[str, str]] | None:
        """The route `method path` reaches and its path parameters, or None."""
        self.matched += 1
        first = path[1:].split("/", 1)[0]
        for entry in self._buckets.get(first, self._wild):
            if entry.methods is not None and method not in entry.methods:
                continue
            if entry.pattern is None:
                if path == entry.static:
                    return entry.route, {}
                continue
            found = entry.pattern.fullmatch(path)
            if found is not None:
                return entry.route, found.groupdict()
        return None

    def __len__(self) -> int:
        return len(self.entries)


class ClassifierMiddleware:
    """Outermost: one match per HTTP request; `scope[ROUTE_KEY]` and
    `scope[PARAMS_KEY]` for every stage after it."""

    def __init__(self, app: ASGIApp, *, table: RouteTable) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            root = scope.get("root_path")
            if root and path.startswith(root):
                path = path[len(root) :] or "/"
            found = self.table.match(scope["method"], path)
            if found is None:
                scope[ROUTE_KEY], scope[PARAMS_KEY] = None, {}
            else:
                scope[ROUTE_KEY], scope[PARAMS_KEY] = found
        await self.app(scope, receive, send)


def resolved_route(scope: Scope) -> ResolvedRoute | None:
    """The request's route, as the classifier found it."""
    route: ResolvedRoute | None = scope.get(ROUTE_KEY)
    return route


def path_params(scope: Scope) -> dict[str, str]:
    params: dict[str, str] = scope.get(PARAMS_KEY) or {}
    return params


def template_regex(template: str) -> re.Pattern[str]:
    """The paths `template` matches; each `{name}` a named group (one segment unless a
    convertor such as `:path` or `:int` says otherwise)."""
    parts, at = [], 0
    for found in _PARAM.finditer(template):
        parts.append(re.escape(template[at : found.start()]))
        regex = _CONVERTOR_REGEX.get(found.group(2) or "str", "[^/]+")
        parts.append(f"(?P<{found.group(1)}>{regex})")
        at = found.end()
    parts.append(re.escape(template[at:]))
    return re.compile("".join(parts))


def _clean(template: str) -> str:
    """`/items/{id:int}` → `/items/{id}`: convertors are not part of the label."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", template)


def _cache_rule(context: Any, original: Any, template: str) -> CacheRule | None:
    for route in (context, original):
        extra = getattr(route, "openapi_extra", None)
        if isinstance(extra, Mapping) and CACHE_EXTENSION in extra:
            return CacheRule.from_extension(extra[CACHE_EXTENSION], _clean(template))
    return None


def _walk(
    routes: list[Any], prefix: str, depth: int
) -> Iterable[tuple[str, frozenset[str] | None, Any, Any]]:
    """(full template, methods, route, its include context) in matching order."""
    if depth > _MAX_DEPTH:
        return
    for context in effective_routes(routes):
        original = getattr(context, "original_route", context)
        path = getattr(context, "path_format", None) or getattr(context, "path", None)
        if not isinstance(path, str):
            continue
        methods = getattr(original, "methods", None)
        children = getattr(original, "routes", None)
        if children is not None and not methods:  # a Mount
            mount_path = str(getattr(context, "path", "")).rstrip("/")
            if children:  # a router or app: its routes sit under the mount's plain path
                yield from _walk(list(children), prefix + mount_path, depth + 1)
            else:  # an ASGI app without routes (static files): everything under it
                yield prefix + mount_path + "/{path:path}", None, original, context
            continue
        # methods None: an ASGI endpoint, which answers every method itself.
        yield prefix + path, frozenset(methods) if methods else None, original, context
