"""FastAPI dependencies shared by the routers: the services, the caller's tenant, a
database connection taken on first use, and JSON answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

from wedsync_api.auth import API_KEY_HEADER, Tenant
from wedsync_api.models import MAX_ID
from wedsync_api.services import Services
from wedsync_perf.database.lazy import LazyConnection
from wedsync_perf.database.queries import RequestQueries
from wedsync_perf.pipeline import TENANT_KEY, resolved_route
from wedsync_perf.priorities import PriorityClass

# Declared for /docs only: AccessMiddleware has checked the key before any route runs.
_api_key_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


# Dependencies are `async def`: FastAPI runs a plain `def` one in a worker thread.
async def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _tenant(request: Request, _key: str | None = Depends(_api_key_scheme)) -> Tenant:
    tenant: Tenant | None = request.scope.get(TENANT_KEY)
    if tenant is None:  # a route the route table calls public asked for a tenant
        raise RuntimeError("route reached without AccessMiddleware's tenant")
    return tenant


ServicesDep = Annotated[Services, Depends(_services)]
CurrentTenant = Annotated[Tenant, Depends(_tenant)]


async def _connection(
    request: Request, services: ServicesDep, tenant: CurrentTenant
) -> AsyncIterator[LazyConnection]:
    """A connection from the route's lane (bulk work can never starve critical routes),
    taken on the first statement — a handler that answers without the database, or
    waits for its body, holds none — with every statement's fingerprint and time
    recorded under the route (N+1 detection). GET/HEAD may be served by a replica that
    has replayed the tenant's last write; anything else runs on the primary and records
    that write."""
    route = resolved_route(request.scope)
    priority = route.priority if route is not None else PriorityClass.STANDARD
    router = services.router
    acquire = router.read if request.method in ("GET", "HEAD") else router.write
    queries = RequestQueries()
    conn = LazyConnection(
        lambda: acquire(tenant.id, priority),
        queries,
        timeout_s=services.statement_bounds[priority],
        idempotent=request.method in ("GET", "HEAD"),  # read-only: safe to run again
    )
    try:
        yield conn
    except BaseException as exc:  # the pool terminates a connection that broke
        await conn.release(exc)
        raise
    else:
        await conn.release()
    finally:
        if route is not None:
            services.queries.finish(route.template, queries)


# scope="function": the connection goes back (and a write position is recorded) before
# the response is sent, so a client can never read ahead of its own write.
Conn = Annotated[LazyConnection, Depends(_connection, scope="function")]
ResourceId = Annotated[int, Path(ge=1, le=MAX_ID, description="Numeric identifier")]


def json_response(model: BaseModel) -> Response:
    """A model's JSON, serialised once by pydantic (no second validation on the way out)."""
    return Response(model.model_dump_json().encode(), media_type="application/json")


def not_found(what: str) -> HTTPException:
    # Another tenant's row and a missing row look the same: existence must not leak.
    return HTTPException(status_code=404, detail=f"{what} not found")
