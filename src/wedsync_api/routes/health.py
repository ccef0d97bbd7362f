"""Liveness and readiness probes, in the IETF health-check format
(draft-inadarei-api-health-check, `application/health+json`).

`/health/live` touches no dependency: a database blip must not restart every pod.
`/health/ready` runs each dependency check concurrently under its own timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from wedsync_perf.priorities import PriorityClass, declare

router = APIRouter(prefix="/health", tags=["health"])
CRITICAL = declare(PriorityClass.CRITICAL)
MEDIA_TYPE = "application/health+json"
CHECK_TIMEOUT_S = 1.0


def _health(status: str, checks: dict[str, list[dict[str, Any]]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": status}
    if checks is not None:
        body["checks"] = checks
    return JSONResponse(body, status_code=200 if status != "fail" else 503, media_type=MEDIA_TYPE)


@router.get("/live", openapi_extra=CRITICAL)
async def live() -> JSONResponse:
    return _health("pass")


async def _timed(name: str, check: Callable[[], Awaitable[object]]) -> tuple[str, dict[str, Any]]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        status, output = "pass", None
    except TimeoutError:
        status, output = "fail", f"no answer within {CHECK_TIMEOUT_S:g} s"
    except Exception as exc:  # any failure of the dependency means "not ready"
        status, output = "fail", type(exc).__name__
    result: dict[str, Any] = {
        "componentType": "datastore",
        "status": status,
        "observedValue": round((time.perf_counter() - started) * 1000, 2),
        "observedUnit": "ms",
    }
    if output:
        result["output"] = output  # exception type only: messages can carry hosts/URLs
    return name, result


@router.get("/ready", openapi_extra=CRITICAL)
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    checks: list[Awaitable[tuple[str, dict[str, Any]]]] = [
        _timed("postgresql:responseTime", lambda: state.pool.fetchval("SELECT 1"))
    ]
    if state.redis is not None:
        checks.append(_timed("redis:responseTime", state.redis.ping))
    results = await asyncio.gather(*checks)
    status = "fail" if any(r["status"] == "fail" for _, r in results) else "pass"
    return _health(status, {name: [result] for name, result in results})
