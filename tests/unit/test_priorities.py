from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.routing import APIRoute

from wedsync_api.app import create_app
from wedsync_api.settings import ApiSettings
from wedsync_perf.pipeline import RouteTable
from wedsync_perf.priorities import (
    PRIORITY_EXTENSION,
    PriorityClass,
    declare,
    declared_priority,
    effective_routes,
)


def test_declaration_round_trips() -> None:
    route = SimpleNamespace(openapi_extra=declare(PriorityClass.BULK))
    assert declared_priority(route) is PriorityClass.BULK


def test_missing_declaration_is_none_and_table_uses_default() -> None:
    route = SimpleNamespace(path="/x", methods={"GET"}, openapi_extra=None)
    assert declared_priority(route) is None
    found = RouteTable.compile([route]).match("GET", "/x")
    assert found is not None
    assert found[0].priority is PriorityClass.STANDARD


def test_unknown_class_is_rejected_with_accepted_values() -> None:
    route = SimpleNamespace(openapi_extra={PRIORITY_EXTENSION: "urgent"})
    with pytest.raises(ValueError, match="critical, standard, bulk"):
        declared_priority(route)


def test_ranks_order_critical_first() -> None:
    assert sorted(PriorityClass, key=lambda p: p.rank) == [
        PriorityClass.CRITICAL,
        PriorityClass.STANDARD,
        PriorityClass.BULK,
    ]


def test_every_api_route_declares_its_class() -> None:
    app = create_app(ApiSettings(database_url="postgresql://unused@127.0.0.1/x"))
    routes = [r for r in effective_routes(app.routes) if isinstance(r.original_route, APIRoute)]
    assert routes
    undeclared = [r.path for r in routes if declared_priority(r) is None]
    assert undeclared == []


def test_wedding_day_routes_are_critical_and_imports_bulk() -> None:
    app = create_app(ApiSettings(database_url="postgresql://unused@127.0.0.1/x"))
    table = RouteTable.compile(app.routes)

    def priority(method: str, path: str) -> PriorityClass:
        found = table.match(method, path)
        assert found is not None, path
        return found[0].priority

    for path in ("/weddings/7/timeline", "/weddings/7/vendors"):
        assert priority("GET", path) is PriorityClass.CRITICAL
    for path in ("/weddings/7/checkins", "/weddings/7/messages"):
        assert priority("POST", path) is PriorityClass.CRITICAL
    assert priority("POST", "/imports/suppliers") is PriorityClass.BULK
    assert priority("GET", "/suppliers/search") is PriorityClass.STANDARD
    openapi = app.openapi()
    timeline = openapi["paths"]["/weddings/{wedding_id}/timeline"]["get"]
    assert timeline[PRIORITY_EXTENSION] == "critical"


def test_every_dependency_of_the_api_is_async() -> None:
    """FastAPI runs a plain `def` dependency in a worker thread: a thread hop on every
    request (it halved the reference API's write throughput once)."""
    import inspect

    app = create_app(ApiSettings(database_url="postgresql://unused@127.0.0.1/x"))

    def calls(dependant: Any) -> Iterator[Any]:
        for sub in dependant.dependencies:
            yield sub.call
            yield from calls(sub)

    sync = set()
    for route in effective_routes(app.routes):
        original = getattr(route, "original_route", route)
        if not isinstance(original, APIRoute):
            continue
        for call in calls(original.dependant):
            target = call if inspect.isfunction(call) else getattr(call, "__call__", call)  # noqa: B004
            if not (inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)):
                sync.add(getattr(call, "__qualname__", repr(call)))
    assert sync == set()
