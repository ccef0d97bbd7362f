"""Supplier import: parse and validate every row first, then COPY all of them in one
transaction. A single bad row rejects the whole file and nothing is written.

Validation is a tight loop of per-field converters rather than a pydantic model per
row: at 100,000 rows the difference is most of the import's time.
"""

from __future__ import annotations

import csv
import gc
import io
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from wedsync_api.models import CATEGORIES, storable_text

__all__ = ["COLUMNS", "ImportFormatError", "ParsedImport", "RowProblem", "parse_suppliers"]

COLUMNS = (
    "name",
    "category",
    "region",
    "lat",
    "lon",
    "rating",
    "price_band",
    "services",
    "email",
    "phone",
)
REQUIRED = frozenset({"name", "category", "region", "lat", "lon", "price_band"})
MAX_REPORTED_ERRORS = 100
_CATEGORIES = frozenset(CATEGORIES)


class ImportFormatError(ValueError):
    """The body as a whole is unreadable (not a row problem): wrong encoding, not a list…"""


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    field: str
    message: str


@dataclass
class ParsedImport:
    records: list[tuple[Any, ...]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    problem_count: int = 0


def _text(limit: int, required: bool) -> Callable[[Any], str | None]:
    def convert(value: Any) -> str | None:
        if value is None or value == "":
            if required:
                raise ValueError("is required")
            return None
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
        return value

    return convert


def _storable(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Add the NUL/surrogate check, for bodies whose bytes could hold either."""

    def checked(value: Any) -> Any:
        result = convert(value)
        if isinstance(result, str):
            storable_text(result)
        elif isinstance(result, list):
            for item in result:
                storable_text(item)
        return result

    return checked


def _number(
    low: float, high: float, required: bool, digits: int | None = None
) -> Callable[[Any], float | None]:
    def convert(value: Any) -> float | None:
        if value is None or value == "":
            if required:
                raise ValueError("is required")
            return None
        if isinstance(value, bool):
            raise ValueError("must be a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError("must be a number") from None
        if not math.isfinite(number) or not low <= number <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return number if digits is None else round(number, digits)

    return convert


def _price_band(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be an integer 1-4")
    try:
        band = int(value)
    except (TypeError, ValueError):
        raise ValueError("must be an integer 1-4") from None
    if band not in (1, 2, 3, 4):
        raise ValueError("must be an integer 1-4")
    return band


def _category(value: Any) -> str:
    if value not in _CATEGORIES:
        raise ValueError(f"must be one of {', '.join(CATEGORIES)}")
    return str(value)


def _services(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    items = [s.strip() for s in value.split(";")] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise ValueError("must be a list of strings (';'-separated in CSV)")
    if len(items) > 50:
        raise ValueError("must list at most 50 services")
    return [s[:100] for s in items if s]


def _email(value: Any) -> str | None:
    text = _optional_email_text(value)
    if text is not None and ("@" not in text or text.startswith("@") or text.endswith("@")):
        raise ValueError("must be an email address")
    return text


_optional_email_text = _text(254, required=False)

# Converters in COLUMNS order, resolved once. The "checked" set adds the NUL/surrogate
# test per field; it is only needed when the body as a whole could contain either.
_CONVERTERS: tuple[Callable[[Any], Any], ...] = (
    _text(200, required=True),
    _category,
    _text(100, required=True),
    # Coordinates to 6 decimals (~0.1 m): a 1e-300 would later underflow PostgreSQL's
    # distance maths.
    _number(-90, 90, required=True, digits=6),
    _number(-180, 180, required=True, digits=6),
    _number(0, 5, required=False),
    _price_band,
    _services,
    _email,
    _text(40, required=False),
)
_TEXT_COLUMNS = frozenset({"name", "region", "services", "email", "phone"})
_CHECKED_CONVERTERS = tuple(
    _storable(c) if name in _TEXT_COLUMNS else c
    for name, c in zip(COLUMNS, _CONVERTERS, strict=True)
)


def _validate(
    rows: Iterable[Sequence[Any] | RowProblem],
    max_rows: int,
    tenant_id: int,
    converters: tuple[Callable[[Any], Any], ...],
) -> ParsedImport:
    """Rows arrive as values in COLUMNS order (None where absent), or as a RowProblem
    already found by the reader."""
    parsed = ParsedImport()
    records = parsed.records
    problems = parsed.problems
    pairs = tuple(zip(COLUMNS, converters, strict=True))
    for number, row in enumerate(rows, start=1):
        if number > max_rows:
            raise OverflowError(max_rows)
        if isinstance(row, RowProblem):
            parsed.problem_count += 1
            if len(problems) < MAX_REPORTED_ERRORS:
                problems.append(RowProblem(number, row.field, row.message))
            continue
        values: list[Any] = [tenant_id]
        ok = True
        for (name, convert), raw in zip(pairs, row, strict=True):
            try:
                values.append(convert(raw))
            except ValueError as exc:
                ok = False
                parsed.problem_count += 1
                if len(problems) < MAX_REPORTED_ERRORS:
                    problems.append(RowProblem(number, name, str(exc)))
        if ok:
            records.append(tuple(values))
    return parsed


_KNOWN = frozenset(COLUMNS)


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Parsing allocates hundreds of thousands of small acyclic objects; the cyclic
    # collector would scan them again and again (ad hoc profiling showed much of the parse time there; not a benchmark figure)
    # without ever finding garbage. Reference counting still frees everything.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_suppliers(body: bytes, fmt: str, max_rows: int, tenant_id: int) -> ParsedImport:
    """Parse a CSV or JSON body into COPY-ready records (`tenant_id` first).

    Raises `ImportFormatError` when the body as a whole is unusable and `OverflowError`
    when it holds more than `max_rows` rows.
    """
    with _gc_paused():
        return _parse(body, fmt, max_rows, tenant_id)


def _parse(body: bytes, fmt: str, max_rows: int, tenant_id: int) -> ParsedImport:
    rows: Iterable[Sequence[Any] | RowProblem]
    if fmt == "json":
        try:
            data = orjson.loads(body)  # rejects invalid UTF-8 and lone surrogates
        except orjson.JSONDecodeError as exc:
            raise ImportFormatError(f"body is not valid JSON: {exc}") from None
        if not isinstance(data, list):
            raise ImportFormatError("JSON body must be an array of supplier objects")
        if len(data) > max_rows:
            raise OverflowError(max_rows)
        rows = _json_rows(data)
        clean = b"\\u0000" not in body
    else:
        try:
            text = body.decode("utf-8-sig")  # strict: no surrogates can survive
        except UnicodeDecodeError:
            raise ImportFormatError("CSV body must be UTF-8 encoded") from None
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        csv_rows = list(itertools.islice(_csv_rows(reader), max_rows + 1))
        if len(csv_rows) > max_rows:
            raise OverflowError(max_rows)
        clean = b"\x00" not in body
        if clean:
            records = _columnar(csv_rows, tenant_id)
            if records is not None:
                return ParsedImport(records=records)
        rows = csv_rows  # something is off: the row-by-row pass names it
    converters = _CONVERTERS if clean else _CHECKED_CONVERTERS
    parsed = _validate(rows, max_rows, tenant_id, converters)
    if not parsed.records and not parsed.problem_count:
        raise ImportFormatError("the import holds no rows")
    return parsed


def _columnar(rows: list[Sequence[Any] | RowProblem], tenant_id: int) -> list[Any] | None:
    """The fast path for clean CSV: validate column by column with C-level builtins.

    Returns None as soon as any check fails; the row-by-row pass then finds and names
    every problem. Accepts exactly what the per-field converters accept.
    """
    if not rows:
        return None
    try:
        columns = list(zip(*rows, strict=True))  # a RowProblem breaks the zip
    except (TypeError, ValueError):
        return None
    name, category, region, lat, lon, rating, band, services, email, phone = columns
    try:
        if not (all(name) and all(region) and set(category) <= _CATEGORIES):
            return None
        if max(map(len, name)) > 200 or max(map(len, region)) > 100:
            return None
        lats = [round(v, 6) for v in map(float, lat)]
        lons = [round(v, 6) for v in map(float, lon)]
        ratings = [float(v) if v else None for v in rating]
        bands = list(map(int, band))
    except (TypeError, ValueError):  # None in a required column, or not a number
        return None
    if not (
        all(-90 <= v <= 90 for v in lats)
        and all(-180 <= v <= 180 for v in lons)
        and all(0 <= v <= 5 for v in ratings if v is not None)
        and set(bands) <= {1, 2, 3, 4}
        and all(v is None or v.count(";") < 50 for v in services)
        and all(v is None or len(v) <= 40 for v in phone)
        and all(
            not v or (len(v) <= 254 and "@" in v and v[0] != "@" and v[-1] != "@") for v in email
        )
    ):
        return None
    if all(_plain_services(v) for v in services):
        service_lists = [v.split(";") if v else [] for v in services]
    else:
        service_lists = [
            [item[:100] for item in (part.strip() for part in v.split(";")) if item] if v else []
            for v in services
        ]
    return list(
        zip(
            itertools.repeat(tenant_id, len(rows)),
            name,
            category,
            region,
            lats,
            lons,
            ratings,
            bands,
            service_lists,
            [v or None for v in email],
            [v or None for v in phone],
            strict=False,
        )
    )


def _plain_services(value: str | None) -> bool:
    """True when splitting on ';' alone gives what the full normalisation would: no
    padding, no empty items, nothing long enough to truncate."""
    if not value:
        return True
    return (
        len(value) <= 100
        and value[0] not in "; "
        and value[-1] not in "; "
        and ";;" not in value
        and " ;" not in value
        and "; " not in value
    )


def _json_rows(data: list[Any]) -> Iterator[Sequence[Any] | RowProblem]:
    for item in data:
        if not isinstance(item, dict):
            yield RowProblem(0, "*", "must be an object")
            continue
        unknown = [k for k in item if k not in _KNOWN]
        if unknown:
            yield RowProblem(0, str(unknown[0])[:40], "is not a known column")
            continue
        yield [item.get(c) for c in COLUMNS]


def _csv_rows(reader: Iterator[list[str]]) -> Iterator[Sequence[Any] | RowProblem]:
    try:
        header = next(reader, [])
        missing = sorted(REQUIRED - set(header))
        if missing:
            raise ImportFormatError(f"CSV header lacks required columns: {', '.join(missing)}")
        unknown = [h for h in header if h not in _KNOWN]
        if unknown:
            raise ImportFormatError(f"CSV header has unknown columns: {', '.join(unknown[:5])}")
        width = len(header)
        position = {name: header.index(name) for name in COLUMNS if name in header}
        picks = [position.get(name) for name in COLUMNS]
        identity = picks == list(range(len(COLUMNS)))
        for row in reader:
            if len(row) != width:
                if not row:  # blank line
                    continue
                yield RowProblem(0, "*", f"has {len(row)} fields; the header has {width}")
            elif identity:
                yield row
            else:
                yield [None if i is None else row[i] for i in picks]
    except csv.Error as exc:
        raise ImportFormatError(f"CSV: {exc}") from None
