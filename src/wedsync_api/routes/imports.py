"""Supplier onboarding imports (bulk priority)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from wedsync_api.deps import Conn, CurrentTenant, ServicesDep, not_found
from wedsync_api.importer import COLUMNS, ImportFormatError, TooManyRows, parse_suppliers
from wedsync_api.models import ImportRejected, ImportResult, RowError
from wedsync_perf.priorities import PriorityClass, declare

router = APIRouter(prefix="/imports", tags=["imports"])
BULK = declare(PriorityClass.BULK)

_SUPPLIER_SCHEMA = {
    "type": "object",
    "required": ["name", "category", "region", "lat", "lon", "price_band"],
    "properties": {
        "name": {"type": "string"},
        "category": {"type": "string"},
        "region": {"type": "string"},
        "lat": {"type": "number"},
        "lon": {"type": "number"},
        "rating": {"type": "number"},
        "price_band": {"type": "integer"},
        "services": {"type": "array", "items": {"type": "string"}},
        "email": {"type": "string"},
        "phone": {"type": "string"},
    },
}
_IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": _SUPPLIER_SCHEMA}},
        },
    }
}
# Below this many bytes parsing in the event loop is cheaper than a thread hop.
_INLINE_PARSE_BYTES = 256 * 1024


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body larger than the {limit}-byte import limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body larger than the {limit}-byte import limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _format_of(request: Request) -> str:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in ("text/csv", "application/csv"):
        return "csv"
    if media == "application/json":
        return "json"
    raise HTTPException(415, "send the import as text/csv or application/json")


@router.post(
    "/suppliers",
    response_model=ImportResult,
    status_code=201,
    openapi_extra={**BULK, **_IMPORT_BODY},
    responses={
        413: {"description": "Body or row count over the limit"},
        415: {"description": "Not CSV or JSON"},
        422: {"model": ImportRejected, "description": "Rows rejected; nothing was written"},
    },
)
async def import_suppliers(
    request: Request,
    services: ServicesDep,
    tenant: CurrentTenant,
    conn: Conn,
    response: Response,
) -> Any:
    """Import suppliers from CSV (header row; `services` separated by `;`) or a JSON
    array. All rows land or none do. The body is read and parsed before the database
    connection is taken."""
    settings = services.settings
    fmt = _format_of(request)
    body = await _read_limited(request, settings.import_max_bytes)
    try:
        if len(body) <= _INLINE_PARSE_BYTES:
            parsed = parse_suppliers(body, fmt, settings.import_max_rows, tenant.id)
        else:
            parsed = await run_in_threadpool(
                parse_suppliers, body, fmt, settings.import_max_rows, tenant.id
            )
    except ImportFormatError as exc:
        if exc.field is None:
            raise HTTPException(422, str(exc)) from None
        header = RowError(row=0, field=exc.field, message="is given more than once")
        rejected = ImportRejected(detail=str(exc), error_count=1, errors=[header])
        return JSONResponse(rejected.model_dump(), status_code=422)
    except TooManyRows:
        raise HTTPException(
            413, f"import holds more than {settings.import_max_rows} rows"
        ) from None
    if parsed.problem_count:
        rejected = ImportRejected(
            detail=f"{parsed.problem_count} problem(s) found; nothing was imported",
            error_count=parsed.problem_count,
            errors=[RowError(row=p.row, field=p.field, message=p.message) for p in parsed.problems],
        )
        return JSONResponse(rejected.model_dump(), status_code=422)

    import_id = uuid.uuid4()
    # Through the query cache: at commit, the tenant's cached searches are dropped.
    queries = services.search_queries.bind(conn, tenant=tenant.id)
    async with queries.transaction():
        await queries.copy_records_to_table(
            "suppliers", records=parsed.records, columns=("tenant_id", *COLUMNS)
        )
        row = await queries.fetchrow(
            "INSERT INTO imports (id, tenant_id, kind, format, status, row_count, finished_at)"
            " VALUES ($1, $2, 'suppliers', $3, 'completed', $4, now())"
            " RETURNING id, kind, format, status, row_count, created_at, finished_at",
            import_id,
            tenant.id,
            fmt,
            len(parsed.records),
        )
    assert row is not None  # INSERT … RETURNING always yields the row
    response.headers["Location"] = f"/imports/{import_id}"
    return ImportResult(**row)


@router.get("/{import_id}", response_model=ImportResult, openapi_extra=BULK)
async def get_import(import_id: uuid.UUID, tenant: CurrentTenant, conn: Conn) -> ImportResult:
    row = await conn.fetchrow(
        "SELECT id, kind, format, status, row_count, created_at, finished_at FROM imports"
        " WHERE tenant_id = $1 AND id = $2",
        tenant.id,
        import_id,
    )
    if row is None:
        raise not_found("import")
    return ImportResult(**dict(row))
