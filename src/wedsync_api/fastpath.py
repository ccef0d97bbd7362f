"""Cached reads answered before FastAPI: a GET whose response sits in this process's
cache tier is served by a small ASGI middleware — after the same authentication and the
same rate limit as the route — without routing, dependency injection, a database
connection or response models.

Measured (`make bench-e2e`'s profile): on a cache hit most of a request's CPU went to
FastAPI's routing and dependency solving, and to taking a pool connection the hit never
used. On a wedding day the cached reads are the critical ones (the day's timelines and
vendor lists, warmed before 06:00), so this is where the process's CPU goes furthest;
and a hit no longer needs the database at all.

Anything else falls through to the app unchanged: another method or path, a missing key
(the route answers 401), a miss (the route loads, stores and counts the miss). Refusals
the fast path makes itself — an unknown key (401), the rate limit (429) — go through
FastAPI's own HTTPException handler, so they are the route's answers byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from fastapi.exception_handlers import http_exception_handler
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from wedsync_api.auth import authenticate
from wedsync_api.caching import cached_response, stored_key
from wedsync_api.models import MAX_ID
from wedsync_api.reads import CachedRead, supplier_read, timeline_read, vendors_read, wedding_read
from wedsync_perf.monitoring import mark_cache_hit
from wedsync_perf.monitoring.routes import template_regex
from wedsync_perf.priorities import effective_routes

__all__ = ["CACHED_GETS", "CachedReadFastPath"]

# Route template → the cached read its handler serves (the handlers call `serve` with
# the same read; a test checks every template here is a GET route of the app).
CACHED_GETS: dict[str, Callable[[int], CachedRead]] = {
    "/weddings/{wedding_id}": wedding_read,
    "/weddings/{wedding_id}/timeline": timeline_read,
    "/weddings/{wedding_id}/vendors": vendors_read,
    "/suppliers/{supplier_id}": supplier_read,
}
_ID = r"([1-9][0-9]{0,18})"  # what ResourceId accepts, canonical form only


class CachedReadFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._table: list[tuple[re.Pattern[str], Callable[[int], CachedRead], Any]] | None = None

    def _build(self, routes: Any) -> list[tuple[re.Pattern[str], Callable[[int], CachedRead], Any]]:
        by_template = {getattr(r, "path", None): r for r in effective_routes(routes)
                       if "GET" in (getattr(r, "methods", None) or ())}  # fmt: skip
        table = []
        for template, read in CACHED_GETS.items():
            route = by_template.get(template)
            if route is None:
                raise RuntimeError(f"cached read {template} is not a GET route of the app")
            pattern = template_regex(template, param=_ID)
            # Routing puts the route itself in the scope (not FastAPI's context wrapper):
            # monitoring knows its template and declared priority by that object.
            table.append((pattern, read, getattr(route, "original_route", route)))
        return table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        if self._table is None:
            self._table = self._build(app.routes)
        path = scope["path"]
        for pattern, make_read, route in self._table:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            resource_id = int(match.group(1))
            if resource_id <= MAX_ID and await self._serve(
                scope, receive, send, app, make_read(resource_id), route
            ):
                return
            break
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, app: Any,
                     read: CachedRead, route: Any) -> bool:  # fmt: skip
        """True when answered here; False to let the route answer."""
        request = Request(scope, receive)
        api_key = request.headers.get("x-api-key")
        if not api_key:
            return False
        state = app.state
        scope["route"], scope["router"] = route, app.router  # monitoring labels by route
        try:
            tenant = await authenticate(state, api_key)
            found, cached = state.cache.peek_local(stored_key(read), tenant=tenant.id,
                                                   data_class=read.data_class)  # fmt: skip
            if not found:
                del scope["route"], scope["router"]
                return False
            await state.rate_limiter.check(tenant.key_id)
        except HTTPException as refused:
            response = await http_exception_handler(request, refused)
            await response(scope, receive, send)
            return True
        mark_cache_hit(scope)
        await cached_response(cached, request.headers.get("if-none-match"))(scope, receive, send)
        return True
