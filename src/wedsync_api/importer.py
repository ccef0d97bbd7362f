"""Supplier import: parse and validate every row first, then COPY all of them in one
transaction. A single bad row rejects the whole file and nothing is written.

Text a spreadsheet would run as a formula — a cell or list item starting with `=`, `+`,
`-` or `@` — is rejected (422 naming row and field), not stored: suppliers' data is
exported to spreadsheets, and quoting it on the way in would change what was sent. A
sign followed only by digits and phone punctuation (`+44 20 7946 0958`, `-5`) runs
nothing and is kept.

Each column has one rule in `RULES`. A rule converts one value (the per-row pass, which
names every problem) and checks a whole column at C speed (the fast path, taken when
every value passes); both read the same limits, so they cannot drift apart.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar

import orjson

from wedsync_api.models import CATEGORIES, storable_text

__all__ = [
    "COLUMNS",
    "RULES",
    "ImportFormatError",
    "ParsedImport",
    "RowProblem",
    "Rule",
    "TooManyRows",
    "parse_suppliers",
]

MAX_REPORTED_ERRORS = 100
_REQUIRED = "is required"
_NONE = type(None)


class ImportFormatError(ValueError):
    """The body as a whole is unreadable (not a row problem): wrong encoding, not a list…
    `field`: the column at fault, when one is (a CSV header naming it twice)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TooManyRows(Exception):
    """More rows than the import allows: a size limit (413), not a malformed body."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"import holds more than {limit} rows")
        self.limit = limit


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


@dataclass(frozen=True, slots=True)
class Rule:
    """One column. `from_csv` / `from_json` convert one value or raise ValueError with a
    message that never repeats the value; `column` converts a whole column, or returns
    None if any value would fail (the per-row pass then says which). CSV values are
    text, or None when the header lacks the column; JSON values are whatever was sent.
    """

    name: str
    _: KW_ONLY
    required: bool = False
    holds_text: ClassVar[bool] = False  # needs the NUL/surrogate check on unclean bodies

    def from_csv(self, value: Any) -> Any:
        raise NotImplementedError

    def from_json(self, value: Any) -> Any:
        raise NotImplementedError

    def column(self, values: Sequence[Any], fmt: str) -> list[Any] | Sequence[Any] | None:
        raise NotImplementedError

    def _absent(self) -> None:
        if self.required:
            raise ValueError(_REQUIRED)

    def _types_ok(self, values: Sequence[Any], types: frozenset[type]) -> bool:
        """Every value one of `types` (None too when the column is optional)."""
        allowed = types if self.required else types | {_NONE}
        return set(map(type, values)) <= allowed


_STR = frozenset({str})
_FORMULA_MESSAGE = "must not start with =, +, - or @ (a spreadsheet would run it as a formula)"
# A formula's first character, unless all that follows is digits and phone punctuation.
_FORMULA = re.compile(r"^[=+\-@](?![\d \t().-]*$)", re.MULTILINE)


def _formula(text: str) -> bool:
    return text[:1] in "=+-@" and _FORMULA.match(text) is not None


def _any_formula(values: Iterable[str]) -> bool:
    """Whether any value is a formula, by the per-row rule exactly (a search over the
    joined column would also flag a line inside a value that holds a newline)."""
    return any(map(_formula, values))


@dataclass(frozen=True, slots=True, kw_only=True)
class Text(Rule):
    """A string of at most `max_length` characters; empty counts as absent. `shape`
    is an extra test of the text, failing with `shape_message`."""

    max_length: int
    shape: Callable[[str], bool] | None = None
    shape_message: str = ""
    holds_text: ClassVar[bool] = True

    def from_csv(self, value: Any) -> str | None:
        if value is None or value == "":
            self._absent()
            return None
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if len(value) > self.max_length:
            raise ValueError(f"must be at most {self.max_length} characters")
        if self.shape is not None and not self.shape(value):
            raise ValueError(self.shape_message)
        if _formula(value):
            raise ValueError(_FORMULA_MESSAGE)
        return value

    from_json = from_csv

    def column(self, values: Sequence[Any], fmt: str) -> Sequence[Any] | None:
        if not self._types_ok(values, _STR) or (self.required and not all(values)):
            return None
        if max(map(len, filter(None, values)), default=0) > self.max_length:
            return None
        if _any_formula(filter(None, values)):
            return None
        if self.shape is not None and not all(map(self.shape, filter(None, values))):
            return None
        return values if self.required else [v or None for v in values]


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice(Rule):
    """One of a fixed set of strings."""

    choices: tuple[str, ...]

    def from_csv(self, value: Any) -> str | None:
        if value is None or value == "":
            self._absent()
            return None
        if not isinstance(value, str) or value not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}")
        return value

    from_json = from_csv

    def column(self, values: Sequence[Any], fmt: str) -> Sequence[Any] | None:
        if not self._types_ok(values, _STR):  # also keeps lists out of the set below
            return None
        allowed = set(self.choices) if self.required else {*self.choices, None, ""}
        if not set(values) <= allowed:
            return None
        return values if self.required else [v or None for v in values]


_JSON_NUMBER = frozenset({int, float})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Bounded(Rule):
    """A number in [low, high]: read with `parse` from CSV text; in JSON, a value of one
    of `json_types` (bool is its own type, so never a number)."""

    low: float
    high: float
    json_types: ClassVar[frozenset[type]]

    def parse(self, value: Any) -> Any:
        raise NotImplementedError

    def from_csv(self, value: Any) -> Any:
        if value is None or value == "":
            self._absent()
            return None
        try:
            number = self.parse(value)
        except ValueError:
            raise ValueError(self._message()) from None
        return self._bounded(number)

    def from_json(self, value: Any) -> Any:
        if value is None:
            self._absent()
            return None
        if type(value) not in self.json_types:
            raise ValueError(self._message())
        return self._bounded(self.parse(value))

    def _bounded(self, number: Any) -> Any:
        if not self.low <= number <= self.high:  # NaN fails too
            raise ValueError(self._message())
        return number

    def _message(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class Number(_Bounded):
    """A finite float (NaN and ±inf fail the bounds), rounded to `digits` decimals
    after the bounds check. CSV: Python's float syntax; JSON: any number."""

    digits: int | None = None
    json_types: ClassVar[frozenset[type]] = _JSON_NUMBER

    def parse(self, value: Any) -> float:
        return float(value)

    def _bounded(self, number: Any) -> Any:
        number = _Bounded._bounded(self, number)
        return number if self.digits is None else round(number, self.digits)

    def _message(self) -> str:
        return f"must be a number between {self.low:g} and {self.high:g}"

    def column(self, values: Sequence[Any], fmt: str) -> list[Any] | None:
        numbers: list[Any]
        try:
            if fmt == "json":
                if not self._types_ok(values, self.json_types):
                    return None
                numbers = (
                    list(map(float, values))
                    if self.required
                    else [None if v is None else float(v) for v in values]
                )
            elif self.required:
                numbers = list(map(float, values))  # None and "" raise
            else:
                numbers = [float(v) if v else None for v in values]
        except (TypeError, ValueError):
            return None
        present: list[float] = numbers if self.required else [v for v in numbers if v is not None]
        if present and (
            any(map(math.isnan, present)) or min(present) < self.low or max(present) > self.high
        ):
            return None
        if self.digits is None:
            return numbers
        if self.required:
            return list(map(round, numbers, itertools.repeat(self.digits)))
        digits = self.digits
        return [None if v is None else round(v, digits) for v in numbers]


@dataclass(frozen=True, slots=True, kw_only=True)
class Integer(_Bounded):
    """An integer. CSV: Python's int syntax; JSON: an integer (2.0 is not one)."""

    json_types: ClassVar[frozenset[type]] = frozenset({int})

    def parse(self, value: Any) -> int:
        return int(value)

    def _message(self) -> str:
        return f"must be an integer {self.low:g}-{self.high:g}"

    def column(self, values: Sequence[Any], fmt: str) -> list[Any] | None:
        try:
            if fmt == "json":
                if not self._types_ok(values, self.json_types):
                    return None
                numbers = list(values)
            else:
                numbers = [int(v) if v else None for v in values]
        except (TypeError, ValueError):
            return None
        present = [v for v in numbers if v is not None]
        if len(present) < len(numbers) and self.required:
            return None
        if present and not (self.low <= min(present) and max(present) <= self.high):
            return None
        return numbers


# A ';'-list whose split needs no cleaning: no empty item, no whitespace beside a ';'.
_UNTIDY_ITEMS = re.compile(r"\A[;\s]|;;|[;\s]\Z|\s;|;\s")


@dataclass(frozen=True, slots=True, kw_only=True)
class Items(Rule):
    """At most `max_items` strings; empty items are dropped and each is cut to
    `item_length`. CSV: ';'-separated, items stripped; JSON: an array of strings. Held
    as a tuple: records of atomic values the cyclic collector soon stops tracking."""

    max_items: int
    item_length: int
    holds_text: ClassVar[bool] = True

    def from_csv(self, value: Any) -> tuple[str, ...]:
        if value is None or value == "":
            self._absent()
            return ()
        return self._tidy([s.strip() for s in value.split(";")])

    def from_json(self, value: Any) -> tuple[str, ...]:
        if value is None:
            self._absent()
            return ()
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise ValueError("must be a list of strings (';'-separated in CSV)")
        return self._tidy(value)

    def _tidy(self, items: list[str]) -> tuple[str, ...]:
        if len(items) > self.max_items:
            raise ValueError(f"must list at most {self.max_items} items")
        limit = self.item_length
        tidy = tuple(s[:limit] for s in items if s)
        if any(map(_formula, tidy)):
            raise ValueError(_FORMULA_MESSAGE)
        return tidy

    def column(self, values: Sequence[Any], fmt: str) -> list[Any] | None:
        if self.required and any(v is None or (fmt == "csv" and v == "") for v in values):
            return None
        limit = self.item_length
        if fmt == "json":
            if not set(map(type, values)) <= {list, _NONE}:
                return None
            present = list(filter(None, values))
            items = list(itertools.chain.from_iterable(present))
            if not set(map(type, items)) <= _STR:
                return None
            tidy = not items or (min(map(len, items)) > 0 and max(map(len, items)) <= limit)
            lists = [tuple(v) if v else () for v in values]
        else:
            present = list(filter(None, values))
            # Joined by ';' the column is untidy exactly where one of its values is.
            tidy = max(map(len, present), default=0) <= limit and not _UNTIDY_ITEMS.search(
                ";".join(present)
            )
            lists = [tuple(v.split(";")) if v else () for v in values]
        if max(map(len, lists), default=0) > self.max_items:
            return None
        if _any_formula(item.lstrip() for item in itertools.chain.from_iterable(lists)):
            return None  # the per-row pass names it
        if tidy:
            return lists
        # Something to clean: the per-value conversion is the definition.
        convert = self.from_json if fmt == "json" else self.from_csv
        return list(map(convert, values))


def _email_shape(text: str) -> bool:
    """Something either side of an '@': the rest is for the mail server to judge."""
    return "@" in text and text[0] != "@" and text[-1] != "@"


RULES: tuple[Rule, ...] = (
    Text("name", required=True, max_length=200),
    Choice("category", required=True, choices=CATEGORIES),
    Text("region", required=True, max_length=100),
    # Coordinates to 6 decimals (~0.1 m): a 1e-300 would later underflow PostgreSQL's
    # distance maths.
    Number("lat", required=True, low=-90, high=90, digits=6),
    Number("lon", required=True, low=-180, high=180, digits=6),
    Number("rating", low=0, high=5),
    Integer("price_band", required=True, low=1, high=4),
    Items("services", max_items=50, item_length=100),
    Text("email", max_length=254, shape=_email_shape, shape_message="must be an email address"),
    Text("phone", max_length=40),
)
COLUMNS = tuple(rule.name for rule in RULES)
REQUIRED = frozenset(rule.name for rule in RULES if rule.required)
_KNOWN = frozenset(COLUMNS)


def _storable(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Add the NUL/surrogate check, for bodies whose bytes could hold either."""

    def checked(value: Any) -> Any:
        result = convert(value)
        if isinstance(result, str):
            storable_text(result)
        elif isinstance(result, tuple):
            for item in result:
                storable_text(item)
        return result

    return checked


def _converters(fmt: str, clean: bool) -> tuple[Callable[[Any], Any], ...]:
    """The per-row converters in COLUMNS order; `clean` bodies skip the NUL check."""
    found = []
    for rule in RULES:
        convert = rule.from_json if fmt == "json" else rule.from_csv
        found.append(convert if clean or not rule.holds_text else _storable(convert))
    return tuple(found)


Row = Sequence[Any]


def parse_suppliers(body: bytes, fmt: str, max_rows: int, tenant_id: int) -> ParsedImport:
    """Parse a CSV or JSON body into COPY-ready records (`tenant_id` first).

    Raises `ImportFormatError` when the body as a whole is unusable and `TooManyRows`
    when it holds more than `max_rows` rows.
    """
    rows, clean = _read_rows(body, fmt, max_rows)
    if not rows:
        raise ImportFormatError("the import holds no rows")
    if clean:
        records = _columnar(rows, fmt, tenant_id)
        if records is not None:
            return ParsedImport(records=records)
    return _validate(rows, _converters(fmt, clean), tenant_id)


def _read_rows(body: bytes, fmt: str, max_rows: int) -> tuple[list[Row | RowProblem], bool]:
    """The body's rows, values in COLUMNS order (None where absent) or the RowProblem
    found while reading; and whether the body certainly holds no NUL."""
    rows: Iterator[Row | RowProblem]
    if fmt == "json":
        try:
            data = orjson.loads(body)  # rejects invalid UTF-8 and lone surrogates
        except orjson.JSONDecodeError as exc:
            raise ImportFormatError(f"body is not valid JSON: {exc}") from None
        if not isinstance(data, list):
            raise ImportFormatError("JSON body must be an array of supplier objects")
        if len(data) > max_rows:  # before the per-object work
            raise TooManyRows(max_rows)
        rows = _json_rows(data, _repeated_keys(body, data))
        clean = b"\\u0000" not in body
    else:
        try:
            text = body.decode("utf-8-sig")  # strict: no surrogates can survive
        except UnicodeDecodeError:
            raise ImportFormatError("CSV body must be UTF-8 encoded") from None
        rows = _csv_rows(csv.reader(io.StringIO(text, newline=""), strict=True))
        clean = b"\x00" not in body
    found = list(itertools.islice(rows, max_rows + 1))
    if len(found) > max_rows:
        raise TooManyRows(max_rows)
    return found, clean


def _validate(
    rows: Iterable[Row | RowProblem], convert: tuple[Callable[[Any], Any], ...], tenant_id: int
) -> ParsedImport:
    """The per-row pass: convert every value and name every problem (row, field)."""
    parsed = ParsedImport()
    records = parsed.records
    problems = parsed.problems
    pairs = tuple(zip(COLUMNS, convert, strict=True))
    for number, row in enumerate(rows, start=1):
        if isinstance(row, RowProblem):
            parsed.problem_count += 1
            if len(problems) < MAX_REPORTED_ERRORS:
                problems.append(RowProblem(number, row.field, row.message))
            continue
        values: list[Any] = [tenant_id]
        ok = True
        for (name, to_value), raw in zip(pairs, row, strict=True):
            try:
                values.append(to_value(raw))
            except ValueError as exc:
                ok = False
                parsed.problem_count += 1
                if len(problems) < MAX_REPORTED_ERRORS:
                    problems.append(RowProblem(number, name, str(exc)))
        if ok:
            records.append(tuple(values))
    return parsed


def _columnar(rows: list[Row | RowProblem], fmt: str, tenant_id: int) -> list[Any] | None:
    """The fast path for clean bodies: each rule checks its whole column at once.

    Returns None as soon as a column fails; the per-row pass then names every problem.
    """
    try:
        columns = list(zip(*rows, strict=True))  # a RowProblem is not iterable
    except TypeError:
        return None
    converted = []
    for rule, values in zip(RULES, columns, strict=True):
        column = rule.column(values, fmt)
        if column is None:
            return None
        converted.append(column)
    return list(zip(itertools.repeat(tenant_id), *converted, strict=False))


def _json_rows(data: list[Any], repeated: dict[int, str]) -> Iterator[Row | RowProblem]:
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            yield RowProblem(0, "*", "must be an object")
            continue
        unknown = [k for k in item if k not in _KNOWN]
        if unknown:
            yield RowProblem(0, str(unknown[0])[:40], "is not a known column")
        elif index in repeated:
            yield RowProblem(0, repeated[index], "is given more than once")
        else:
            yield tuple(map(item.get, COLUMNS))


class _Repeated:
    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


def _first_repeat(pairs: list[tuple[str, Any]]) -> _Repeated | None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return _Repeated(key)
        seen.add(key)
    return None  # only repeats matter to the caller


def _repeated_keys(body: bytes, data: list[Any]) -> dict[int, str]:
    """Keys given twice in one object, by index: orjson silently keeps the last.

    Every key is a string followed by a ':', so when the body holds no more colons (or,
    second, no more `":` and quote-space pairs) than the objects have keys, none is
    repeated. Only otherwise does the stdlib parser, which sees every pair, look.
    """
    keys = sum(len(item) for item in data if isinstance(item, dict))
    if body.count(b":") <= keys:
        return {}
    closings = body.count(b'":') + sum(body.count(b'"' + s) for s in (b" ", b"\t", b"\n", b"\r"))
    if closings <= keys:
        return {}
    try:
        items = json.loads(body, object_pairs_hook=_first_repeat)
    except RecursionError:  # deeper than the stdlib parser goes, within orjson's limit
        raise ImportFormatError("JSON body nests too deeply") from None
    return {i: item.key for i, item in enumerate(items) if isinstance(item, _Repeated)}


def _csv_rows(reader: Iterator[list[str]]) -> Iterator[Row | RowProblem]:
    try:
        header = next(reader, [])
        missing = sorted(REQUIRED - set(header))
        if missing:
            raise ImportFormatError(f"CSV header lacks required columns: {', '.join(missing)}")
        unknown = [h for h in header if h not in _KNOWN]
        if unknown:
            raise ImportFormatError(f"CSV header has unknown columns: {', '.join(unknown[:5])}")
        repeated = sorted({h for h in header if header.count(h) > 1}, key=COLUMNS.index)
        if repeated:
            raise ImportFormatError(
                f"CSV header repeats columns: {', '.join(repeated)}", field=repeated[0]
            )
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
                yield tuple(row)  # a tuple of strings the collector soon stops tracking
            else:
                yield tuple(None if i is None else row[i] for i in picks)
    except csv.Error as exc:
        raise ImportFormatError(f"CSV: {exc}") from None
