"""The framework's ceiling for `bench-e2e`: the reference API's routes (same paths,
same methods) on the same server stack — FastAPI under one uvicorn worker with its
defaults — each answering precomputed bytes: no database, no cache, no layer. What the
reference API does beyond that is what the layer has to make cheap.

Served by `python -m uvicorn benchmarks._ceiling:create_ceiling_app --factory`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from fastapi import FastAPI, Response

from wedsync_api.app import create_app, services_of
from wedsync_api.settings import ApiSettings

# About the size of a wedding's timeline (the route most of the critical load reads).
_BODY = orjson.dumps(
    {"wedding_id": 1, "wedding_date": "2025-07-12",
     "items": [{"id": i, "starts_at": "2025-07-12T10:00:00Z", "ends_at": None,
                "title": "Ceremony", "location": "Main hall", "supplier_id": None}
               for i in range(8)]}
)  # fmt: skip


def _answer(status: int) -> Callable[[], Awaitable[Response]]:
    async def endpoint() -> Response:
        return Response(_BODY, status_code=status, media_type="application/json")

    return endpoint


def create_ceiling_app() -> FastAPI:
    # Only its route table is used: no database, no Redis (whatever the environment says).
    reference = create_app(
        ApiSettings(database_url="postgresql://unused@127.0.0.1/unused", redis_url=None)
    )
    app = FastAPI()
    own = {app.docs_url, app.redoc_url, app.openapi_url, app.swagger_ui_oauth2_redirect_url}
    for entry in services_of(reference).routes.entries:
        if entry.static in own:  # the ceiling app serves its own docs
            continue
        methods = sorted(entry.methods or ("GET",))
        status = 201 if methods == ["POST"] else 200
        app.add_api_route(entry.static, _answer(status), methods=methods)
    return app
