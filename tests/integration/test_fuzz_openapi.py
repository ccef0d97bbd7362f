"""schemathesis generates requests from the OpenAPI schema against a real uvicorn
server on the seeded database: no input may produce a 5xx."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import key_for
from wedsync_api.app import create_app
from wedsync_api.settings import ApiSettings
from wedsync_perf.testing import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api_url(seeded_dsn: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": seeded_dsn, "WEDSYNC_API_RATE_LIMIT": "100000/minute"}
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "wedsync_perf", "serve", "--port", str(port)], env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "API server exited during start-up"
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "API server not ready in 60 s"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def _operations() -> list[Any]:
    app = create_app(ApiSettings(database_url="postgresql://unused@127.0.0.1/x"))
    schema = schemathesis.openapi.from_dict(app.openapi())
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", _operations(), ids=lambda op: op.label)
def test_no_input_causes_a_server_error(operation: Any, api_url: str) -> None:
    # schemathesis' own pytest plugin does not run on pytest 9 yet, so the Hypothesis
    # loop is written out here; each operation is its own test.
    @given(case=operation.as_strategy())
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call(base_url=api_url, headers=key_for(1))
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        )

    check()
