"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Path, Request

from wedsync_api.auth import Tenant, require_tenant
from wedsync_api.models import MAX_ID
from wedsync_perf.database.queries import RequestQueries, TimedConnection
from wedsync_perf.priorities import PriorityClass, declared_priority

_PRIORITY_OF: dict[int, PriorityClass] = {}


def route_priority(request: Request) -> PriorityClass:
    """The priority class the matched route declared (cached per route object)."""
    route = request.scope.get("route")
    found = _PRIORITY_OF.get(id(route))
    if found is None:
        found = declared_priority(route) or PriorityClass.STANDARD
        _PRIORITY_OF[id(route)] = found
    return found


async def _connection(
    request: Request, tenant: Annotated[Tenant, Depends(require_tenant)]
) -> AsyncIterator[asyncpg.Connection]:
    """A connection from the route's lane (bulk work can never starve critical routes),
    with every statement's fingerprint and time recorded for the route (N+1 detection).
    Only after authentication. GET/HEAD may be served by a replica that has replayed the
    tenant's last write; anything else runs on the primary and records that write."""
    queries = RequestQueries()
    router = request.app.state.router
    acquire = router.read if request.method in ("GET", "HEAD") else router.write
    async with acquire(tenant.id, route_priority(request)) as conn:
        yield TimedConnection(conn, queries)  # type: ignore[misc]
    route = request.scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", "?")
    request.app.state.queries.finish(template, queries)


CurrentTenant = Annotated[Tenant, Depends(require_tenant)]
# scope="function": the connection goes back (and a write position is recorded) before
# the response is sent, so a client can never read ahead of its own write.
Conn = Annotated[asyncpg.Connection, Depends(_connection, scope="function")]
ResourceId = Annotated[int, Path(ge=1, le=MAX_ID, description="Numeric identifier")]


def not_found(what: str) -> HTTPException:
    # Another tenant's row and a missing row look the same: existence must not leak.
    return HTTPException(status_code=404, detail=f"{what} not found")
