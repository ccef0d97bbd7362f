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
| GET /weddings/{id}/timeline         | wedding_timeline   | wedding:{id}        |
| GET /weddings/{id}/vendors          | wedding_vendors    | wedding:{id}        |

| event (write route)                 | invalidates        |
|-------------------------------------|--------------------|
| booking created                     | venue:{id}         |
| vendor checked in                   | wedding:{id}       |
| suppliers imported                  | suppliers          |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import date
from typing import Any

import orjson
from fastapi import Request, Response
from pydantic import BaseModel

from wedsync_perf.caching import Cache
from wedsync_perf.monitoring import mark_cache_hit

__all__ = ["cached_json", "invalidate"]


async def cached_json(
    request: Request,
    *,
    tenant_id: int,
    key: str,
    data_class: str,
    tags: Iterable[str],
    load: Callable[[], Awaitable[BaseModel]],
    wedding_date: Callable[[Any], date | None] | None = None,
) -> Response:
    """The route's response body from the cache, else from `load()` (then cached)."""
    cache: Cache = request.app.state.cache

    async def loader() -> Any:
        return (await load()).model_dump(mode="json")

    body = await cache.get_or_set(
        key,
        loader,
        tenant=tenant_id,
        data_class=data_class,
        tags=tuple(tags),
        wedding_date=wedding_date,
        on_hit=lambda: mark_cache_hit(request.scope),
    )
    return Response(orjson.dumps(body), media_type="application/json")


async def invalidate(request: Request, tenant_id: int, *tags: str) -> None:
    cache: Cache = request.app.state.cache
    await cache.invalidate(*tags, tenant=tenant_id)
