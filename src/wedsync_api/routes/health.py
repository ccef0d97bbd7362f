"""Liveness and readiness probes, in the IETF health-check format
(draft-inadarei-api-health-check, `application/health+json`).

`/health/live` touches no dependency: a database blip must not restart every pod.
`/health/ready` runs each check concurrently under its own timeout. A *shared*
dependency (PostgreSQL, Redis) that fails makes the answer `warn`, not `fail`: every
instance sees the same outage, and pulling them all out of the balancer at once turns a
degraded service into none (cached reads still answer, writes get a fast 503 with
Retry-After). Only faults of this instance fail it: its pool saturated with requests
waiting, its event loop running late, its memory or disk nearly full.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from wedsync_api.deps import ServicesDep
from wedsync_api.services import Services
from wedsync_perf.errors import BackendUnavailable
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
    """A shared dependency: a failure is `warn` (see the module docstring)."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        status, output = "pass", None
    except TimeoutError:
        status, output = "warn", f"no answer within {CHECK_TIMEOUT_S:g} s"
    except BackendUnavailable as exc:  # our own message (no address): say why
        status, output = "warn", str(exc)
    except Exception as exc:  # unreachable: degraded, but not this instance's fault
        status, output = "warn", type(exc).__name__
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
async def ready(request: Request, services: ServicesDep) -> JSONResponse:
    state = services
    checks: list[Awaitable[tuple[str, dict[str, Any]]]] = [
        _timed("postgresql:responseTime", lambda: state.pool.fetchval("SELECT 1"))
    ]
    guard = state.redis_guard
    if guard is not None:  # through the shared breaker: nothing to wait for while it is open
        checks.append(_timed("redis:responseTime", lambda: guard.call("ping", guard.client.ping)))
    results = list(await asyncio.gather(*checks))
    results += _redis_users(state)
    results += _local_checks(state)
    statuses = {r["status"] for _, r in results}
    status = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
    if not _monitoring(request, state):
        return _health(status)
    return _health(status, {name: [result] for name, result in results})


def _monitoring(request: Request, state: Services) -> bool:
    """True when the request carries the monitoring token (none set: nobody does)."""
    token = state.monitor.token
    given = request.headers.get("authorization", "")
    if token is None or given[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(given[7:].strip().encode(), token.encode())


def _redis_users(state: Services) -> list[tuple[str, dict[str, Any]]]:
    """What runs on Redis besides requests: degraded (`warn`) while it cannot reach it."""
    checks: list[tuple[str, dict[str, Any]]] = []
    bus = state.cache.bus
    if bus is not None:  # down: the in-process cache tier is off
        checks.append(("redis:invalidationBus", {
            "componentType": "component", "observedValue": bus.reconnects,
            "observedUnit": "reconnects", "status": "pass" if bus.connected.is_set() else "warn"}))  # fmt: skip
    publisher = state.monitor.publisher
    if publisher is not None:  # failing: the fleet view lacks this instance's windows
        checks.append(("redis:fleetFlush", {
            "componentType": "component", "observedValue": publisher.failures,
            "observedUnit": "failures", "status": "warn" if publisher.degraded else "pass"}))  # fmt: skip
    if state.monitor.store is not None:  # unavailable: every instance notifies
        lease = state.monitor.alerts.lease
        checks.append(("redis:alertLease", {
            "componentType": "component", "observedValue": lease,
            "status": "warn" if lease == "unavailable" else "pass"}))  # fmt: skip
    return checks


def _level(value: float, warn: float, fail: float) -> str:
    return "fail" if value >= fail else "warn" if value >= warn else "pass"


def _bulk_lane(state: Services) -> dict[str, Any]:
    """Every bulk slot held past the bulk statement bound is a lane the bounds failed
    to free (fail: imports can never run here again); a full lane with imports waiting
    is the lane doing its job under load (warn)."""
    pool = state.pool
    bulk = PriorityClass.BULK
    stuck = pool.held_longer_than(bulk, state.statement_bounds[bulk] + CHECK_TIMEOUT_S)
    full = pool.in_use_bulk >= pool.max_bulk and pool.waiting()[bulk.value] > 0
    status = "fail" if stuck >= pool.max_bulk else "warn" if full else "pass"
    return {"componentType": "component", "observedValue": pool.in_use_bulk,
            "observedUnit": "connections", "status": status}  # fmt: skip


def _local_checks(state: Services) -> list[tuple[str, dict[str, Any]]]:
    """This instance's own health: pool, event loop, memory, disk (no I/O to wait on)."""
    import psutil

    pool = state.pool
    saturated = pool.in_use >= pool.size and sum(pool.waiting().values()) > 0
    checks = [("pool:utilization", {
        "componentType": "component", "observedValue": round(pool.in_use / pool.size, 3),
        "observedUnit": "ratio", "status": "fail" if saturated else "pass"})]  # fmt: skip
    checks.append(("pool:bulk", _bulk_lane(state)))
    admission = state.admission
    if admission is not None:
        lag = admission.loop_lag_s
        checks.append(("eventloop:lag", {
            "componentType": "component", "observedValue": round(lag * 1000, 2),
            "observedUnit": "ms", "status": _level(lag, 0.1, 0.5)}))  # fmt: skip
    memory = psutil.virtual_memory().percent / 100
    checks.append(("memory:utilization", {
        "componentType": "system", "observedValue": round(memory, 3), "observedUnit": "ratio",
        "status": _level(memory, 0.9, 0.98)}))  # fmt: skip
    disk = psutil.disk_usage(str(state.data_dir)).percent / 100
    checks.append(("disk:utilization", {
        "componentType": "system", "observedValue": round(disk, 3), "observedUnit": "ratio",
        "status": _level(disk, 0.9, 0.98)}))  # fmt: skip
    return checks
