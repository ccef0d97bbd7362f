"""Priority classes of routes: the one declaration monitoring, SLOs, admission control,
pool lanes and cache policy all read.

A route declares its class once, as an OpenAPI extension (`x-wedsync-priority`), so the
declaration is visible in `/docs` and needs no registry beside the route table; a route
whose answers the HTTP response cache may keep declares its cache rule the same way
(`x-wedsync-cache`)::

    @router.get("/weddings/{id}/timeline", openapi_extra=declare(PriorityClass.CRITICAL))

`wedsync_perf.pipeline.RouteTable` reads both declarations once, at startup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol

from wedsync_perf.errors import InvalidValue

__all__ = [
    "CACHE_EXTENSION",
    "PRIORITY_EXTENSION",
    "PriorityClass",
    "declare",
    "declared_priority",
    "effective_routes",
]

PRIORITY_EXTENSION = "x-wedsync-priority"
CACHE_EXTENSION = "x-wedsync-cache"


class PriorityClass(StrEnum):
    """How much a request matters on a wedding day, most important first."""

    CRITICAL = "critical"
    """Wedding-day operations: today's timeline, vendor check-ins, day-of messages."""
    STANDARD = "standard"
    """Interactive planning: search, profiles, availability."""
    BULK = "bulk"
    """Imports, exports, reports: may wait or be shed first."""

    @property
    def rank(self) -> int:
        """0 for critical, 2 for bulk: lower is more important."""
        return _RANK[self]


_RANK = {PriorityClass.CRITICAL: 0, PriorityClass.STANDARD: 1, PriorityClass.BULK: 2}


class _CacheDeclaration(Protocol):
    def extension(self) -> dict[str, Any]: ...


def declare(priority: PriorityClass, *, cache: _CacheDeclaration | None = None) -> dict[str, Any]:
    """The `openapi_extra` mapping that declares a route's priority class and, with
    `cache` (a `wedsync_perf.pipeline.CacheRule`), how its answers are cached."""
    declared: dict[str, Any] = {PRIORITY_EXTENSION: priority.value}
    if cache is not None:
        declared[CACHE_EXTENSION] = cache.extension()
    return declared


def declared_priority(route: object) -> PriorityClass | None:
    """The class a route declared, or None when it declared none.

    Works on any route object with an `openapi_extra` mapping (FastAPI's `APIRoute`).
    Raises `InvalidValue` (a ValueError) when the declaration names an unknown class.
    """
    extra = getattr(route, "openapi_extra", None)
    if not isinstance(extra, Mapping) or PRIORITY_EXTENSION not in extra:
        return None
    value = extra[PRIORITY_EXTENSION]
    try:
        return PriorityClass(value)
    except ValueError:
        accepted = ", ".join(p.value for p in PriorityClass)
        raise InvalidValue(PRIORITY_EXTENSION, value, f"a priority class: {accepted}") from None


def effective_routes(routes: Sequence[Any]) -> list[Any]:
    """Routes as requests see them, with included routers expanded.

    FastAPI 0.137+ keeps `include_router` as a tree (`_IncludedRouter` nodes without a
    path) and offers `fastapi.routing.iter_route_contexts` to walk it; older FastAPI
    and plain Starlette already hold a flat list.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return list(routes)
    return list(iter_route_contexts(routes))
