"""Supplier import: all rows or none, errors that name rows and fields, hard limits."""

from __future__ import annotations

import asyncpg
import httpx
import orjson
import pytest

from tests.conftest import api_settings, key_for, running
from wedsync_api.app import create_app

pytestmark = pytest.mark.integration
KEY = key_for(2)
HEADER = "name,category,region,lat,lon,rating,price_band,services,email,phone"


def _csv(rows: int, bad: dict[int, str] | None = None) -> bytes:
    lines = [HEADER]
    for i in range(1, rows + 1):
        line = f"Import Co {i},caterer,yorkshire,53.9,-1.08,4.5,2,canapés;bar,hi{i}@x.example,+44 1"
        lines.append((bad or {}).get(i, line))
    return ("\n".join(lines) + "\n").encode()


async def _suppliers(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM suppliers WHERE tenant_id = 2"))


async def test_ten_thousand_rows_land(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    before = await _suppliers(db)
    response = await client.post(
        "/imports/suppliers", content=_csv(10_000), headers={**KEY, "Content-Type": "text/csv"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["row_count"] == 10_000
    assert await _suppliers(db) == before + 10_000
    status = await client.get(response.headers["location"], headers=KEY)
    assert status.json()["status"] == "completed"
    services = await db.fetchval(
        "SELECT services FROM suppliers WHERE tenant_id = 2 AND name = 'Import Co 9999'"
    )
    assert services == ["canapés", "bar"]


async def test_one_bad_row_rejects_everything(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    before = await _suppliers(db)
    bad = {7: "Bad Co,caterer,yorkshire,95.0,-1.08,4.5,2,,,", 4000: "Worse,juggler,x,1,1,,9,,,"}
    response = await client.post(
        "/imports/suppliers", content=_csv(5_000, bad), headers={**KEY, "Content-Type": "text/csv"}
    )
    assert response.status_code == 422
    body = response.json()
    problems = {(e["row"], e["field"]) for e in body["errors"]}
    assert problems == {(7, "lat"), (4000, "category"), (4000, "price_band")}
    assert body["error_count"] == 3
    assert await _suppliers(db) == before


async def test_json_import(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    before = await _suppliers(db)
    rows = [
        {"name": f"Json {i}", "category": "dj", "region": "wales", "lat": 51.4, "lon": -3.1,
         "price_band": 1, "services": ["lighting"]}
        for i in range(25)
    ]  # fmt: skip
    response = await client.post(
        "/imports/suppliers",
        content=orjson.dumps(rows),
        headers={**KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert await _suppliers(db) == before + 25


@pytest.mark.parametrize(
    ("content", "media", "status", "fragment"),
    [
        (b"name,category\nx,dj\n", "text/csv", 422, "lacks required columns"),
        (
            b"name,category,region,lat,lon,price_band,shoe_size\n",
            "text/csv",
            422,
            "unknown columns",
        ),
        (HEADER.encode() + b"\n", "text/csv", 422, "no rows"),
        (b"\xff\xfe\x00", "text/csv", 422, "UTF-8"),
        (b'{"name": "x"}', "application/json", 422, "array"),
        (b"[1, 2", "application/json", 422, "not valid JSON"),
        (b"<xml/>", "application/xml", 415, "text/csv"),
    ],
)
async def test_unusable_bodies_are_explained(
    client: httpx.AsyncClient, content: bytes, media: str, status: int, fragment: str
) -> None:
    response = await client.post(
        "/imports/suppliers", content=content, headers={**KEY, "Content-Type": media}
    )
    assert response.status_code == status
    assert fragment in response.json()["detail"]


async def test_oversize_body_is_413_and_writes_nothing(
    seeded_dsn: str, db: asyncpg.Connection
) -> None:
    before = await _suppliers(db)
    app = create_app(api_settings(import_max_bytes=4096), dsn=seeded_dsn)
    async with running(app) as small:
        response = await small.post(
            "/imports/suppliers", content=_csv(200), headers={**KEY, "Content-Type": "text/csv"}
        )
        assert response.status_code == 413

        async def chunks():  # no Content-Length: the streamed size is what counts
            body = _csv(200)
            for i in range(0, len(body), 1000):
                yield body[i : i + 1000]

        streamed = await small.post(
            "/imports/suppliers", content=chunks(), headers={**KEY, "Content-Type": "text/csv"}
        )
        assert streamed.status_code == 413
    assert await _suppliers(db) == before


async def test_too_many_rows_is_413(seeded_dsn: str, db: asyncpg.Connection) -> None:
    before = await _suppliers(db)
    app = create_app(api_settings(import_max_rows=100), dsn=seeded_dsn)
    async with running(app) as small:
        response = await small.post(
            "/imports/suppliers", content=_csv(101), headers={**KEY, "Content-Type": "text/csv"}
        )
        assert response.status_code == 413
        assert "100 rows" in response.json()["detail"]
    assert await _suppliers(db) == before


async def test_a_client_hanging_up_mid_body_is_a_499_not_a_server_error(seeded_dsn: str) -> None:
    """Under overload clients time out while their import is still being read: that is
    the client's doing, answered 499 (what access logs call it), never a 500."""
    app = create_app(api_settings(), dsn=seeded_dsn)
    body = _csv(50)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/imports/suppliers", "raw_path": b"/imports/suppliers",
             "root_path": "", "query_string": b"", "server": ("test", 80), "client": ("127.0.0.1", 1),
             "headers": [(b"host", b"test"), (b"content-type", b"text/csv"),
                         (b"content-length", str(len(body)).encode()),
                         *((k.lower().encode(), v.encode()) for k, v in KEY.items())]}  # fmt: skip
    messages = iter([
        {"type": "http.request", "body": body[:100], "more_body": True},
        {"type": "http.disconnect"},
    ])  # fmt: skip
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return next(messages)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async with running(app):
        await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 499


@pytest.mark.parametrize(
    ("content", "media", "expected"),
    [
        (
            b'[{"name": "A", "category": ["dj", "SECRET"], "region": "r", "lat": 1, "lon": 2,'
            b' "price_band": 2}]',
            "application/json",
            [(1, "category")],
        ),
        (
            b'[{"name": "A", "category": "dj", "region": "r", "lat": 1, "lon": 2,'
            b' "price_band": 2, "region": "SECRET"}]',
            "application/json",
            [(1, "region")],
        ),
    ],
)
async def test_malformed_json_rows_are_422_row_problems(
    client: httpx.AsyncClient, content: bytes, media: str, expected: list[tuple[int, str]]
) -> None:
    response = await client.post(
        "/imports/suppliers", content=content, headers={**KEY, "Content-Type": media}
    )
    assert response.status_code == 422, response.text
    assert [(e["row"], e["field"]) for e in response.json()["errors"]] == expected
    assert "SECRET" not in response.text


async def test_a_repeated_csv_column_is_422_naming_it(client: httpx.AsyncClient) -> None:
    body = b"name,category,region,lat,lon,price_band,region\nA,dj,r,1,2,2,SECRET\n"
    response = await client.post(
        "/imports/suppliers", content=body, headers={**KEY, "Content-Type": "text/csv"}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "CSV header repeats columns: region"
