"""The pipeline put together on a Starlette/FastAPI app, in the one order that is safe.

    client → classifier → monitoring → limits (headers, body cap) → deadline →
           admission → access (auth, rate limit) → response cache → the app's routes

Call `install_pipeline` once, after every route is added: the route table is compiled
from the routes the app has then. Each stage is optional but the classifier, which the
others read; their order is not: nothing cached or prioritised skips authentication or
the rate limit, and monitoring sees every refusal.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from wedsync_perf.caching.http import HttpCacheMiddleware, ResponseCache
from wedsync_perf.errors import ConfigError
from wedsync_perf.monitoring.middleware import MonitoringMiddleware
from wedsync_perf.monitoring.recorder import Recorder
from wedsync_perf.pipeline.access import AccessMiddleware, Authenticate, FailureLimit
from wedsync_perf.pipeline.deadline import DeadlineMiddleware, Deadlines
from wedsync_perf.pipeline.limits import LimitsMiddleware, RequestLimits
from wedsync_perf.pipeline.ratelimit import RateLimiter
from wedsync_perf.pipeline.routing import ClassifierMiddleware, RouteTable
from wedsync_perf.scaling.admission import AdmissionController, AdmissionMiddleware

__all__ = ["install_pipeline"]


def install_pipeline(
    app: Any,
    *,
    recorder: Recorder | None = None,
    admission: AdmissionController | None = None,
    deadlines: Deadlines | None = None,
    authenticate: Authenticate | None = None,
    limiter: RateLimiter | None = None,
    failures: FailureLimit | None = None,
    responses: ResponseCache | None = None,
    limits: RequestLimits | None = RequestLimits(),  # noqa: B008 - frozen, shared safely
    public: Collection[str] = (),
    internal: Collection[str] = (),
    inner: Collection[tuple[type, dict[str, Any]]] = (),
) -> RouteTable:
    """Add the stages to `app` (anything with Starlette's `add_middleware` and
    `routes`) and return the compiled route table.

    `failures`: the per-address limit on failed authentications.
    `limits`: header and body bounds, checked before any other stage works (None: off).
    `deadlines`: each request's overall deadline by priority class. `public`/`internal`:
    route templates (see `ResolvedRoute`). `inner`: the app's own
    middleware, as (class, options), placed right inside admission control (measured,
    sheddable, before authentication). Raises `ConfigError` for a malformed route
    declaration, a cache rule naming a data class the cache does not know, or a body
    cap naming no route."""
    table = RouteTable.compile(app.routes, public=public, internal=internal)
    if limits is not None:
        limits.check_routes({e.route.template for e in table.entries})
    if responses is not None:
        if authenticate is None:
            raise ConfigError("response cache", "needs an authenticator in front of it")
        responses.check([e.route.cache for e in table.entries if e.route.cache is not None])
        app.add_middleware(HttpCacheMiddleware, responses=responses)
    if authenticate is not None:
        app.add_middleware(
            AccessMiddleware, authenticate=authenticate, limiter=limiter, failures=failures
        )
    for middleware, options in inner:
        app.add_middleware(middleware, **options)
    if admission is not None:
        app.add_middleware(AdmissionMiddleware, controller=admission)
    if deadlines is not None:
        app.add_middleware(DeadlineMiddleware, deadlines=deadlines)
    if limits is not None:  # inside monitoring, so its refusals are measured too
        app.add_middleware(LimitsMiddleware, limits=limits)
    if recorder is not None:
        app.add_middleware(MonitoringMiddleware, recorder=recorder)
    app.add_middleware(ClassifierMiddleware, table=table)
    return table
