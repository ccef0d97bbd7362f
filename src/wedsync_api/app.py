"""The reference WedSync API: `create_app(settings)` builds it.

It is only its routes, its authenticator (an API-key lookup) and its data; everything a
request passes through on the way is the library's pipeline (`install_pipeline`), and
everything it runs on is one `Services` object, started and released by the lifespan.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from wedsync_api.routes import health, imports, suppliers, venues, weddings
from wedsync_api.services import Services
from wedsync_api.settings import ApiSettings, load_api_settings
from wedsync_perf.caching import Cache
from wedsync_perf.dashboard import dashboard_endpoints
from wedsync_perf.database.errors import RETRY_AFTER_S, fault_of
from wedsync_perf.errors import WedsyncPerfError
from wedsync_perf.pipeline.assemble import install_pipeline
from wedsync_perf.pipeline.limits import RequestLimits
from wedsync_perf.settings import PerfSettings, load_settings

__all__ = ["create_app", "services_of"]

# Errors that may mean "the database cannot serve this right now": the library's
# `fault_of` decides, and a fault answers 503 + Retry-After so clients back off; what it
# does not recognise stays a 500 that looks like the bug it is.
_UNAVAILABLE = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    WedsyncPerfError,  # PoolTimeout (lanes full), DatabaseUnavailable, NotStarted
)
PROBES = ("/health/live", "/health/ready")


def create_app(
    settings: ApiSettings | None = None,
    *,
    dsn: str | None = None,
    perf: PerfSettings | None = None,
    cache: Cache | None = None,
) -> FastAPI:
    """Build the API. `dsn` overrides URL resolution (tests pass a prepared database);
    otherwise `DATABASE_URL` or the embedded server is used. `cache` replaces the one the
    settings describe."""
    settings = settings or load_api_settings()
    perf = perf or load_settings(PerfSettings)
    services = Services(settings, perf, dsn=dsn, cache=cache)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await services.start(stack)
            yield

    app = FastAPI(
        title="WedSync reference API",
        version="0.1.0",
        description="Wedding-planning API on which wedsync-perf is measured. "
        "Every route declares its priority class in `x-wedsync-priority`, and a cached "
        "route its cache rule in `x-wedsync-cache`.",
        lifespan=lifespan,
    )
    app.state.services = services
    for router in (health.router, suppliers.router, venues.router, weddings.router,
                   imports.router):  # fmt: skip
        app.include_router(router)

    for error in _UNAVAILABLE:
        app.add_exception_handler(error, _unavailable)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)

    monitor = services.monitor
    endpoints = {**monitor.endpoints(), **dashboard_endpoints(monitor)}
    for path, endpoint in endpoints.items():
        # Starlette wraps plain functions only; an ASGI callable object is served as is.
        app.add_route(path, endpoint, include_in_schema=False)  # type: ignore[arg-type]
    internal = {*PROBES, *endpoints}  # not measured, never shed, no API key
    docs = {app.docs_url, app.redoc_url, app.openapi_url, app.swagger_ui_oauth2_redirect_url}
    inner: list[tuple[type, dict[str, Any]]] = []
    if settings.inject == "slow-timeline":  # demos only: measured like any slowness
        inner.append((SlowTimeline, {"delay_s": 0.25}))
    services.routes = install_pipeline(
        app,
        recorder=services.monitor.recorder,
        admission=services.admission,
        deadlines=services.deadlines,
        authenticate=services.authenticator,
        limiter=services.limiter,
        failures=services.auth_failures,
        responses=services.responses,
        limits=RequestLimits(
            max_body_bytes=settings.body_max_bytes,
            max_header_bytes=settings.header_max_bytes,
            max_headers=settings.header_max_count,
            # the import reads up to its own cap itself (and says so in its 413)
            route_body_bytes={"/imports/suppliers": settings.import_max_bytes},
        ),
        public={*internal, *(d for d in docs if d)},
        internal=internal,
        inner=inner,
    )
    return app


def services_of(app: FastAPI) -> Services:
    """The app's services (tests and tools reach them here)."""
    services: Services = app.state.services
    return services


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    if fault_of(exc) is None:
        raise exc  # a bug: ServerErrorMiddleware answers 500 and logs it
    return JSONResponse(
        {"detail": "database temporarily unavailable"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


# A field name as the API defines it: anything else in an error's location is a key the
# client made up, and is not repeated back.
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each field and the rule it broke, never the value sent: FastAPI's
    default echoes the input (personal data back into responses and logs), and an
    input that cannot be encoded (a lone surrogate) turned the 422 into a 500."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [
        {
            "loc": [
                part if isinstance(part, int) or _FIELD_NAME.fullmatch(part) else "<key>"
                for part in error.get("loc", ())
            ],
            "msg": str(error.get("msg", "invalid")).encode("utf-8", "replace").decode(),
            "type": error.get("type", "value_error"),
        }
        for error in errors[:20]
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI answers a JSON body that is not UTF-8 with a 400 raised from the
    `UnicodeDecodeError`: it is invalid input like any other (422)."""
    if isinstance(exc.__cause__, UnicodeDecodeError):
        detail = [{"loc": ["body"], "msg": "body is not valid UTF-8", "type": "json_invalid"}]
        return JSONResponse({"detail": detail}, status_code=422)
    assert isinstance(exc, StarletteHTTPException)  # registered for it alone
    return await http_exception_handler(request, exc)


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client hung up while its body was read (a timeout under overload): nothing to
    # answer and no server error to log. 499 is the status access logs know for it.
    return Response(status_code=499)


class SlowTimeline:
    """Fault injection (`WEDSYNC_API_INJECT=slow-timeline`): every timeline request
    takes `delay_s` longer, so a demo can show an SLO burning and its alert firing."""

    def __init__(self, app: Any, delay_s: float) -> None:
        self.app = app
        self.delay_s = delay_s

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/timeline"):
            await asyncio.sleep(self.delay_s)
        await self.app(scope, receive, send)
