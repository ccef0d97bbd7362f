"""How the reference API uses the cache: serve a route's JSON from the cache, and the
domain events that invalidate it.

Every cached read runs inside its handler, after authentication and rate limiting, and
is scoped to the caller's tenant: nothing cached can skip either, or cross tenants.

| route                               | data class         | tags                |
|-------------------------------------|--------------------|---------------------|
| GET /suppliers/{id}                 | supplier_profile   | supplier:{id}       |
| GET /suppliers/search               | supplier_search    | suppliers           |
| GET /venues/{id}/availability       | venue_availability | venue:{id}          |
| GET /weddings/{id}                  | wedding            | wedding:{id}        |
| GET /weddings/{id}/timeline         | wedding_timeline   | wedding:{id}, timeline:{id} |
| GET /weddings/{id}/vendors          | wedding_vendors    | wedding:{id}, vendors:{id}  |

| event (write route)                 | invalidates        |
|-------------------------------------|--------------------|
| booking created                     | venue:{id}         |
| vendor checked in                   | vendors:{id}       |
| suppliers imported                  | suppliers          |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

from wedsync_api.reads import CachedRead
from wedsync_perf.caching import Cache
from wedsync_perf.caching.http import etag_of, matches
from wedsync_perf.monitoring import mark_cache_hit

__all__ = ["cached_response", "fill", "invalidate", "serve", "stored_key"]

# The stored form of a response; bumped whenever it changes, so entries written by an
# older release (still in a shared Redis during a rolling deploy) are never read as new.
_FORMAT = "resp2:"


async def fill(cache: Cache, tenant_id: int, read: CachedRead, load: Callable[[], Awaitable[BaseModel]],
               on_hit: Callable[[], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """`read`'s response for `tenant_id`, from the cache or `load()` (then cached).

    Cached as the finished body and its ETag: a hit serialises and hashes nothing."""

    async def loader() -> dict[str, Any]:
        model = await load()
        body = model.model_dump_json()
        day = getattr(model, "wedding_date", None)
        return {
            "body": body,
            "etag": etag_of(body.encode()),
            "wedding_date": day.isoformat() if isinstance(day, date) else None,
        }

    return await cache.get_or_set(
        stored_key(read),
        loader,
        tenant=tenant_id,
        data_class=read.data_class,
        tags=read.tags,
        wedding_date=read.wedding_date,
        on_hit=on_hit,
    )


async def serve(
    request: Request, tenant_id: int, read: CachedRead, load: Callable[[], Awaitable[BaseModel]]
) -> Response:
    """A route's response from the cache (counted as a cache hit by monitoring), with a
    strong ETag: a client that sends it back in If-None-Match gets a 304 — after
    authentication and rate limiting, like any other answer."""
    if request.app.state.settings.layer == "off":  # the baseline: straight from the database
        model = await load()
        return Response(model.model_dump_json().encode(), media_type="application/json")
    cached = await fill(
        request.app.state.cache, tenant_id, read, load, lambda: mark_cache_hit(request.scope)
    )
    return cached_response(cached, request.headers.get("if-none-match"))


def cached_response(cached: dict[str, Any], if_none_match: str | None) -> Response:
    """A stored response as sent: the body with its strong ETag, or 304 when the client
    already has it (the route and the fast path answer through this one function)."""
    etag = cached["etag"]
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "X-API-Key"}
    if matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(cached["body"].encode(), media_type="application/json", headers=headers)


def stored_key(read: CachedRead) -> str:
    """The cache key `fill` stores `read`'s response under."""
    return _FORMAT + read.key


async def invalidate(request: Request, tenant_id: int, *tags: str) -> None:
    cache: Cache = request.app.state.cache
    await cache.invalidate(*tags, tenant=tenant_id)
