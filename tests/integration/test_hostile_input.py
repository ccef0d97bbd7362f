"""Hostile input against the reference API served for real (`wedsync-perf serve`, a
uvicorn child process on the seeded PostgreSQL): oversized bodies and headers, lone
surrogates and bad UTF-8, malformed imports, floods of unknown keys, readiness probed
for details. The server's log is captured, and the last test checks that none of the
personal data and keys sent along reached it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import MONITORING, MONITORING_TOKEN, api_settings, key_for, running
from wedsync_api.app import create_app, services_of
from wedsync_perf.testing import free_port, wait_for_http

pytestmark = pytest.mark.integration

HANG_GUARD_S = 60  # only so a regression fails instead of hanging the suite
MIB = 1024 * 1024
RSS_SLACK = 8 * MIB  # "a few MB": allocator noise, not a body held


@dataclass
class Server:
    base: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    injected: list[str] = field(default_factory=list)  # what must never be logged

    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)


@pytest.fixture(scope="module")
def server(seeded_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log = tmp_path_factory.mktemp("hostile") / "server.log"
    env = {**os.environ, "DATABASE_URL": seeded_dsn, "REDIS_URL": "",
           "WEDSYNC_PERF_METRICS_TOKEN": MONITORING_TOKEN}  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "wedsync_perf", "serve", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    served = Server(f"http://127.0.0.1:{port}", port, process, log)
    try:
        asyncio.run(_ready(served.base))
        yield served
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _ready(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        await wait_for_http(client, "/health/ready")


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        yield client


def _personal(server: Server) -> tuple[str, str]:
    """A fresh email and phone number, remembered as never to be logged."""
    tag = secrets.token_hex(4)
    email, phone = f"guest.{tag}@example.org", f"+44 20 7{tag[:3].translate(_DIGITS)} 0958"
    server.injected += [email, phone]
    return email, phone


_DIGITS = str.maketrans("abcdef", "123456")


async def _exchange(
    port: int, head: bytes, body_chunks: int = 0, chunk: bytes = b"", tail: bytes = b""
) -> bytes:
    """Write `head`, then `body_chunks` times `chunk`, then `tail` (raw bytes), reading
    all the while; return what the server sent before it closed or, once
    everything was written, its first response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def write() -> None:
        with contextlib.suppress(OSError):  # the server answered and closed: stop writing
            writer.write(head)
            await writer.drain()
            for _ in range(body_chunks):
                writer.write(chunk)
                await writer.drain()
            writer.write(tail)
            await writer.drain()

    sending = asyncio.create_task(write())
    received = b""
    try:
        async with asyncio.timeout(HANG_GUARD_S):
            while b"\r\n\r\n" not in received:
                try:
                    data = await reader.read(65536)
                except ConnectionResetError:  # the answer, if sent, was read before it
                    break
                if not data:
                    break
                received += data
    finally:
        sending.cancel()
        writer.close()
        with contextlib.suppress(OSError):  # the server stopped reading: a reset is the point
            await writer.wait_closed()
    return received


def _status(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:100]
    return int(response.split(b" ", 2)[1])


# -- limits before work ---------------------------------------------------------------


def test_a_declared_100_mb_body_without_a_key_is_refused_from_its_head(server: Server) -> None:
    before = server.rss()
    head = (b"POST /weddings/1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nContent-Length: %d\r\n\r\n" % (100 * MIB))  # fmt: skip
    # The head alone is answered: the 413 comes before a byte of the body is sent.
    # (A client that writes on regardless may see a reset instead: the server closes
    # without draining what it will not read.)
    answer = asyncio.run(_exchange(server.port, head))
    assert _status(answer) == 413, answer[:200]
    assert b"connection: close" in answer.lower()
    assert server.rss() - before < RSS_SLACK


def test_a_chunked_100_mb_body_without_a_key_is_never_read_into_memory(server: Server) -> None:
    before = server.rss()
    head = (b"POST /weddings/1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nTransfer-Encoding: chunked\r\n\r\n")  # fmt: skip
    chunk = b"%x\r\n%s\r\n" % (MIB, b"x" * MIB)
    answer = asyncio.run(_exchange(server.port, head, 100, chunk))
    assert _status(answer) in (401, 413), answer[:200]
    assert server.rss() - before < RSS_SLACK


def test_a_chunked_body_over_the_cap_with_a_key_is_cut_off_at_the_cap(server: Server) -> None:
    before = server.rss()
    key = key_for(1)["X-API-Key"].encode()
    head = (b"POST /weddings/1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nX-API-Key: " + key + b"\r\nTransfer-Encoding: chunked\r\n\r\n")  # fmt: skip
    chunk = b"%x\r\n%s\r\n" % (MIB, b" " * MIB)
    answer = asyncio.run(_exchange(server.port, head, 100, chunk))
    assert _status(answer) == 413, answer[:200]
    assert server.rss() - before < RSS_SLACK


def test_an_8_mb_header_is_431(server: Server) -> None:
    before = server.rss()
    head = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Padding: "
    answer = asyncio.run(_exchange(server.port, head, 8, b"a" * MIB, b"\r\n\r\n"))
    assert _status(answer) == 431, answer[:200]
    assert server.rss() - before < RSS_SLACK


async def test_too_many_or_too_large_headers_are_431(http: httpx.AsyncClient) -> None:
    many = {f"x-h{i}": "1" for i in range(150)}
    assert (await http.get("/health/live", headers=many)).status_code == 431
    large = {f"x-h{i}": "a" * 4000 for i in range(10)}  # 40 KB: under the protocol's cap
    assert (await http.get("/health/live", headers=large)).status_code == 431
    assert (await http.get("/health/live", headers={"x-h": "a" * 4000})).status_code == 200


async def test_imports_keep_their_larger_cap(http: httpx.AsyncClient) -> None:
    body = b"[" + b" " * (2 * MIB) + b"]"  # over the 1 MiB default, under the import cap
    answer = await http.post("/imports/suppliers", content=body,
                             headers={**key_for(1), "Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 422, answer.text  # read and parsed: holds no rows


# -- errors that echo nothing -----------------------------------------------------------

JSON_ROUTES = {  # every route taking a JSON body, with a body whose strings get the payload
    "/weddings/1/checkins": {"supplier_id": 1, "status": "arrived", "note": "{}"},
    "/weddings/1/messages": {"sender": "{}", "body": "{}"},
    "/venues/1/bookings": {"day": "{}", "wedding_id": 1},
    "/imports/suppliers": [{"name": "{}", "category": "florist", "region": "{}", "lat": 1,
                            "lon": 2, "price_band": 2, "email": "{}"}],
}  # fmt: skip


def test_the_json_routes_are_all_covered(seeded_dsn: str) -> None:
    schema = create_app(api_settings(), dsn=seeded_dsn).openapi()
    posted = {
        path.replace("{wedding_id}", "1").replace("{venue_id}", "1")
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("post", "put", "patch")
        and "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    assert posted == set(JSON_ROUTES)


def _with(template: object, text: str) -> bytes:
    """`template` as JSON with `text` (JSON-escaped already) in each string's braces."""
    return json.dumps(template).replace("{}", text).encode()


@pytest.mark.parametrize("path", sorted(JSON_ROUTES))
async def test_lone_surrogates_are_422_and_never_echoed(
    server: Server, http: httpx.AsyncClient, path: str
) -> None:
    email, phone = _personal(server)
    for escape in ("\\ud800", "\\udfff", "x\\ud83d"):
        body = _with(JSON_ROUTES[path], f"{email} {phone} {escape}")
        answer = await http.post(path, content=body,
                                 headers={**key_for(1), "Content-Type": "application/json"})  # fmt: skip
        assert answer.status_code == 422, (path, answer.status_code, answer.text[:300])
        assert email not in answer.text
        assert phone not in answer.text


@pytest.mark.parametrize("path", sorted(JSON_ROUTES))
async def test_bad_utf8_is_422(server: Server, http: httpx.AsyncClient, path: str) -> None:
    email, _ = _personal(server)
    body = _with(JSON_ROUTES[path], email).replace(b"@", b"\xff\xfe@", 1)
    answer = await http.post(path, content=body,
                             headers={**key_for(1), "Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 422, (path, answer.status_code, answer.text[:300])
    assert email.split("@")[0] not in answer.text


async def test_validation_errors_name_field_and_rule_never_the_value(
    server: Server, http: httpx.AsyncClient
) -> None:
    email, phone = _personal(server)
    answer = await http.post(
        "/weddings/1/checkins",
        json={"supplier_id": email, "status": phone, email: 1},
        headers=key_for(1),
    )
    assert answer.status_code == 422
    assert email not in answer.text
    assert phone not in answer.text
    detail = answer.json()["detail"]
    fields = {tuple(error["loc"]) for error in detail}
    assert {("body", "supplier_id"), ("body", "status"), ("body", "<key>")} <= fields
    assert all(error["msg"] and error["type"] for error in detail)
    assert not any("input" in error or "ctx" in error for error in detail)


# -- imports ----------------------------------------------------------------------------

SUPPLIER = {"name": "Fleur", "category": "florist", "region": "London", "lat": 51.5,
            "lon": -0.12, "price_band": 2}  # fmt: skip


async def _import(http: httpx.AsyncClient, body: bytes, media: str) -> httpx.Response:
    return await http.post("/imports/suppliers", content=body,
                           headers={**key_for(1), "Content-Type": media})  # fmt: skip


def _problems(answer: httpx.Response) -> set[tuple[int, str]]:
    assert answer.status_code == 422, answer.text
    return {(error["row"], error["field"]) for error in answer.json()["errors"]}


@pytest.mark.parametrize("value", [["florist"], {"florist": 1}, [], {}])
async def test_a_non_scalar_field_is_422_naming_row_and_field(
    http: httpx.AsyncClient, value: object
) -> None:
    rows = [SUPPLIER, {**SUPPLIER, "category": value}, {**SUPPLIER, "region": value}]
    answer = await _import(http, json.dumps(rows).encode(), "application/json")
    assert _problems(answer) == {(2, "category"), (3, "region")}


async def test_duplicate_json_keys_are_422_naming_row_and_field(http: httpx.AsyncClient) -> None:
    row = json.dumps(SUPPLIER)
    body = f'[{row}, {row[:-1]}, "name": "Other"}}]'.encode()
    assert _problems(await _import(http, body, "application/json")) == {(2, "name")}


async def test_duplicate_csv_columns_are_422_naming_the_header_and_field(
    http: httpx.AsyncClient,
) -> None:
    body = b"name,category,region,lat,lon,price_band,region\nFleur,florist,London,51.5,0,2,Kent\n"
    assert _problems(await _import(http, body, "text/csv")) == {(0, "region")}


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "-2+3",
                                  "@SUM(A1:A9)"])  # fmt: skip
async def test_formula_cells_are_rejected_not_stored(http: httpx.AsyncClient, cell: str) -> None:
    quoted = cell.replace('"', '""')
    csv_body = (
        "name,category,region,lat,lon,price_band,phone,services\n"
        "Fleur,florist,London,51.5,0,2,+44 20 7946 0958,bouquets\n"
        f'"{quoted}",florist,London,51.5,0,2,,\n'
        f'Fleur,florist,London,51.5,0,2,,"bouquets; {quoted}"\n'
    ).encode()
    assert _problems(await _import(http, csv_body, "text/csv")) == {(2, "name"), (3, "services")}
    rows = [SUPPLIER, {**SUPPLIER, "phone": cell}]
    answer = await _import(http, json.dumps(rows).encode(), "application/json")
    assert _problems(answer) == {(2, "phone")}


async def test_a_phone_number_with_a_plus_is_no_formula(http: httpx.AsyncClient) -> None:
    rows = [{**SUPPLIER, "phone": "+44 (20) 7946-0958"}]
    answer = await _import(http, json.dumps(rows).encode(), "application/json")
    assert answer.status_code == 201, answer.text


# -- readiness ----------------------------------------------------------------------------


async def test_readiness_without_the_token_says_only_its_status(http: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": MONITORING_TOKEN}):
        answer = await http.get("/health/ready", headers=headers)
        assert answer.status_code == 200
        assert answer.json() == {"status": answer.json()["status"]}
        assert answer.json()["status"] in ("pass", "warn")
    detailed = await http.get("/health/ready", headers=MONITORING)
    assert "pool:utilization" in detailed.json()["checks"]


# -- unknown keys ----------------------------------------------------------------------------


async def test_1000_random_keys_cost_a_few_dozen_lookups(seeded_dsn: str) -> None:
    app = create_app(api_settings(), dsn=seeded_dsn)
    async with running(app) as client:
        valid = key_for(1)
        assert (await client.get("/suppliers/1", headers=valid)).status_code in (200, 404)
        services = services_of(app)
        before = services.authenticator.lookups
        statuses = [
            (await client.get("/suppliers/1", headers={"X-API-Key": "wsk_" + secrets.token_hex(16)}))
            .status_code
            for _ in range(1000)
        ]  # fmt: skip
        assert set(statuses) == {401, 429}
        assert services.authenticator.lookups - before <= 40
        # A key this instance already knows still works from the flooding address.
        assert (await client.get("/suppliers/1", headers=valid)).status_code in (200, 404)


async def test_one_unknown_key_repeated_is_looked_up_once(seeded_dsn: str) -> None:
    app = create_app(api_settings(auth_failure_limit="100000/minute"), dsn=seeded_dsn)
    async with running(app) as client:
        services = services_of(app)
        unknown = {"X-API-Key": "wsk_" + secrets.token_hex(16)}
        statuses = {(await client.get("/suppliers/1", headers=unknown)).status_code
                    for _ in range(200)}  # fmt: skip
        assert statuses == {401}
        assert services.authenticator.lookups == 1


async def test_random_keys_on_the_server_are_bounded_and_logged_nowhere(
    server: Server, http: httpx.AsyncClient
) -> None:
    keys = ["wsk_" + secrets.token_hex(16) for _ in range(300)]
    server.injected += keys[:20]
    statuses = {(await http.get("/suppliers/1", headers={"X-API-Key": k})).status_code
                for k in keys}  # fmt: skip
    assert statuses <= {401, 429}
    assert 429 in statuses
    stats = (await http.get("/perf/stats", headers=MONITORING)).json()
    assert stats["authentication"]["lookups"] <= 40


# -- last: what reached the log ----------------------------------------------------------------


def test_nothing_injected_reached_the_server_log(server: Server) -> None:
    assert len(server.injected) > 30  # the tests above ran first and sent them
    log = server.log.read_text(errors="replace")
    leaked = [value for value in server.injected if value in log]
    assert not leaked, f"{len(leaked)} injected values in the server log"
    assert "Traceback" not in log
