"""The importer's two paths, the columnar fast path and the per-row pass, come from one
table of rules: generated rows, valid and just off valid, in CSV and JSON, must get the
same verdict from both, and the per-row pass must name exactly the (row, field) pairs the
generator made bad. Problems never repeat the value sent."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wedsync_api import importer
from wedsync_api.importer import (
    COLUMNS,
    REQUIRED,
    ImportFormatError,
    ParsedImport,
    TooManyRows,
    parse_suppliers,
)
from wedsync_api.models import CATEGORIES

# Each field's values come as two strategies, (good, bad), so the test knows which
# fields it made bad.
Drawn = tuple[Any, bool]
Pool = tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]
SPACES = " \t\x1c\x85\xa0\u2003"  # str.strip() removes all of these
CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
SAFE = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00@;=+-")
# What a spreadsheet would run: rejected wherever text is stored.
FORMULAS = st.sampled_from(["=1+1", "@SUM(A1)", "+cmd|' /C calc'!A0", "-2+3", "=HYPERLINK(x)"])
NOTHING = st.nothing()


def _absent(required: bool, value: object) -> Pool:
    return (NOTHING, st.just(value)) if required else (st.just(value), NOTHING)


def _text_field(size: int, required: bool) -> Pool:
    good = st.text(CHARS, min_size=1, max_size=size) | st.text(CHARS, min_size=size, max_size=size)
    good = good.filter(lambda s: s[:1] not in "=+-@")
    good_absent, bad_absent = _absent(required, "")
    too_long = st.text(CHARS, min_size=size + 1, max_size=size + 3)
    return good | good_absent, too_long | FORMULAS | bad_absent


def _number(low: float, high: float, fmt: str, required: bool) -> Pool:
    inside = st.floats(low, high) | st.sampled_from([low, high, 0.0, -0.0])
    finite = fmt == "json"  # JSON has no infinity (orjson would send null)
    outside = st.floats(max_value=low, exclude_max=True, allow_infinity=not finite) | st.floats(
        min_value=high, exclude_min=True, allow_infinity=not finite
    )
    good_absent, bad_absent = _absent(required, None if fmt == "json" else "")
    if fmt == "json":
        wrong = st.sampled_from([True, "1.5", "", [1.0], {"v": 1}])
        return inside | st.integers(int(low), int(high)) | good_absent, outside | wrong | bad_absent
    padded = st.tuples(inside, st.sampled_from(["", " ", "\t"])).map(
        lambda p: f"{p[1]}{p[0]!r}{p[1]}"
    )
    wrong = st.sampled_from(["nan", "-inf", "inf", "one", "1.5.2", "0x1"])
    return padded | good_absent, outside.map(repr) | wrong | bad_absent


def _price_band(fmt: str) -> Pool:
    if fmt == "json":
        return st.integers(1, 4), st.sampled_from([0, 5, -1, 2.0, "2", "", True, None, [2]])
    good = st.sampled_from(["1", "2", "3", "4", " 2", "+3", "04"])
    return good, st.sampled_from(["0", "5", "2.0", "", "two", "-1", "1e0"])


def _services(fmt: str) -> Pool:
    short = st.text(st.sampled_from("ab" + SPACES), max_size=6)  # padding to strip
    item = short | short | st.text(SAFE, max_size=8) | st.text(SAFE, min_size=99, max_size=102)
    items = st.lists(item, max_size=50)
    too_many = st.lists(st.just("x") | st.just(""), min_size=51, max_size=53)
    if fmt == "json":
        wrong = st.sampled_from(["a;b", "", [1], {"a": "b"}, ["a", None], 3])
        return items | st.none(), too_many | wrong | FORMULAS.map(lambda f: ["a", f])
    return items.map(";".join), too_many.map(";".join) | FORMULAS.map(lambda f: f"a; {f}")


def _email() -> Pool:
    side = st.text(SAFE, min_size=1, max_size=20)
    good = st.tuples(side, side).map("@".join) | st.tuples(side, side).map(
        lambda p: f"{p[0]}@@{p[1]}"
    )
    bad = side.map(lambda s: "@" + s) | side.map(lambda s: s + "@") | side
    long = st.tuples(side, st.integers(254, 256)).map(lambda p: ("a@" + p[0] * 300)[: p[1]])
    return good | st.just("") | long.filter(lambda s: len(s) <= 254), bad | long.filter(
        lambda s: len(s) > 254
    )


def _pool(name: str, fmt: str) -> Pool:
    pools: dict[str, Pool] = {
        "name": _text_field(200, required=True),
        "category": (
            st.sampled_from(CATEGORIES),
            st.sampled_from(["", "Caterer", "caterer ", "juggler"]),
        ),
        "region": _text_field(100, required=True),
        "lat": _number(-90, 90, fmt, required=True),
        "lon": _number(-180, 180, fmt, required=True),
        "rating": _number(0, 5, fmt, required=False),
        "price_band": _price_band(fmt),
        "services": _services(fmt),
        "email": _email(),
        "phone": _text_field(40, required=False),
    }
    good, bad = pools[name]
    if fmt == "json" and name in ("name", "region", "email", "phone", "category"):
        good_absent, bad_absent = _absent(name in REQUIRED, None)
        wrong = st.sampled_from([1, 2.5, True, ["caterer"], {"k": "v"}])
        good, bad = good | good_absent, bad | wrong | bad_absent
    return good, bad


Case = tuple[bytes, set[tuple[int, str]]]


def _drawer(draw: st.DrawFn) -> Any:
    """Half the bodies are valid throughout: otherwise almost every row has a bad field
    and the fast path's conversions would seldom be compared."""
    valid = draw(st.booleans())

    def value(name: str, fmt: str) -> Drawn:
        good, bad = _pool(name, fmt)
        if valid or draw(st.integers(0, 3)):  # a quarter of the fields in the others
            return draw(good), True
        return draw(bad), False

    return valid, value


@st.composite
def csv_bodies(draw: st.DrawFn) -> Case:
    optional = [c for c in COLUMNS if c not in REQUIRED]
    header = [*sorted(REQUIRED), *draw(st.lists(st.sampled_from(optional), unique=True))]
    header = draw(st.permutations(header))
    _, field_value = _drawer(draw)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    expected = set()
    for number in range(1, draw(st.integers(1, 4)) + 1):
        row = []
        for name in header:
            value, ok = field_value(name, "csv")
            row.append(value)
            if not ok:
                expected.add((number, name))
        writer.writerow(row)
    return out.getvalue().encode(), expected


@st.composite
def json_bodies(draw: st.DrawFn) -> Case:
    spaced = draw(st.booleans())  # `"key" : value`, which the repeat check must see
    valid, field_value = _drawer(draw)
    objects = []
    expected = set()
    for number in range(1, draw(st.integers(1, 4)) + 1):
        keys = draw(st.lists(st.sampled_from(COLUMNS), unique=True)) + (
            sorted(REQUIRED) if valid else []
        )
        pairs = []
        for name in COLUMNS:
            if name in keys:
                value, ok = field_value(name, "json")
                pairs.append((name, value))
                if not ok:
                    expected.add((number, name))
            elif name in REQUIRED:
                expected.add((number, name))
        twist = "none" if valid else draw(st.sampled_from(["none"] * 6 + ["unknown", "repeat"]))
        if twist == "unknown" or (twist == "repeat" and pairs):
            key = "shoe_size" if twist == "unknown" else draw(st.sampled_from(pairs))[0]
            pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(_pool("name", "json")[0])))
            expected = {e for e in expected if e[0] != number} | {(number, key)}
        sep = b" : " if spaced else b":"
        objects.append(
            b"{" + b",".join(orjson.dumps(k) + sep + orjson.dumps(v) for k, v in pairs) + b"}"
        )
    return b"[" + b",".join(objects) + b"]", expected


def _both_paths(body: bytes, fmt: str) -> tuple[ParsedImport, list[Any] | None]:
    rows, clean = importer._read_rows(body, fmt, 1000)
    assert clean  # the generators never send NUL
    return importer._validate(rows, importer._converters(fmt, clean), 7), importer._columnar(
        rows, fmt, 7
    )


def _check(body: bytes, fmt: str, expected: set[tuple[int, str]]) -> None:
    per_row, fast = _both_paths(body, fmt)
    assert {(p.row, p.field) for p in per_row.problems} == expected
    assert per_row.problem_count == len(per_row.problems)
    if expected:
        assert fast is None  # the fast path accepts nothing the per-row pass rejects
    else:
        assert fast == per_row.records  # and accepts all it accepts, converted alike
    full = parse_suppliers(body, fmt, 1000, 7)
    assert (full.records if not expected else full.problems) == (
        per_row.records if not expected else per_row.problems
    )


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(csv_bodies())
def test_csv_paths_agree(case: Case) -> None:
    _check(case[0], "csv", case[1])


@PROPERTY
@given(json_bodies())
def test_json_paths_agree(case: Case) -> None:
    _check(case[0], "json", case[1])


def _problems(body: bytes, fmt: str = "json") -> set[tuple[int, str, str]]:
    return {(p.row, p.field, p.message) for p in parse_suppliers(body, fmt, 100, 1).problems}


ROW = {"name": "A", "region": "r", "lat": 1, "lon": 2, "price_band": 2}


@pytest.mark.parametrize("category", [["caterer"], {"caterer": 1}, 3])
def test_a_category_that_is_not_a_string_is_a_row_problem(category: object) -> None:
    body = orjson.dumps([ROW, {**ROW, "category": category}, {**ROW, "category": "dj"}])
    problems = _problems(body)
    assert {(r, f) for r, f, _ in problems} == {(1, "category"), (2, "category")}


def test_a_repeated_json_key_is_named_without_its_values() -> None:
    body = b'[{"name": "A", "category": "dj", "region": "r", "lat": 1, "lon": 2,'
    body += b' "price_band": 2, "name": "SECRET-VALUE"}]'
    assert _problems(body) == {(1, "name", "is given more than once")}


def test_colons_inside_values_do_not_hide_a_repeat() -> None:
    row = {**ROW, "category": "dj", "name": 'Open 9:00 "late":'}
    clean = orjson.dumps([row] * 3)
    assert parse_suppliers(clean, "json", 100, 1).records  # only the slow check looks
    repeated = clean[:-2] + b', "lat": 3}]'
    assert _problems(repeated) == {(3, "lat", "is given more than once")}


def test_a_repeated_csv_column_is_named() -> None:
    with pytest.raises(ImportFormatError, match=r"repeats columns: lat$"):
        parse_suppliers(b"name,category,region,lat,lon,price_band,lat\n", "csv", 10, 1)


def test_too_many_rows_is_its_own_error() -> None:
    for body, fmt in (
        (b"name,category,region,lat,lon,price_band\n" + b"A,dj,r,1,2,2\n" * 3, "csv"),
        (orjson.dumps([{**ROW, "category": "dj"}] * 3), "json"),
    ):
        with pytest.raises(TooManyRows) as caught:
            parse_suppliers(body, fmt, 2, 1)
        assert not isinstance(caught.value, ImportFormatError)
        assert caught.value.limit == 2


def test_nul_is_caught_by_the_per_row_pass() -> None:
    body = b"name,category,region,lat,lon,price_band,services\nA\x00,dj,r,1,2,2,x;\x00\n"
    assert _problems(body, "csv") == {
        (1, "name", "must not contain NUL characters"),
        (1, "services", "must not contain NUL characters"),
    }


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_problems_never_repeat_the_value(fmt: str) -> None:
    secret = "SECRET-ABC"
    if fmt == "json":
        row = {"name": secret * 30, "category": secret, "region": [secret], "lat": secret,
               "lon": {secret: 1}, "rating": 9, "price_band": secret, "services": secret,
               "email": secret, "phone": secret * 5}  # fmt: skip
        body = orjson.dumps([row])
    else:
        body = ",".join(COLUMNS).encode() + b"\n" + ",".join([secret * 30] * 10).encode() + b"\n"
    problems = parse_suppliers(body, fmt, 10, 1).problems
    assert len(problems) == (10 if fmt == "json" else 9)  # a long CSV service is cut, not refused
    assert all(secret not in p.message and secret not in p.field for p in problems)


def test_a_formula_sign_after_a_newline_inside_a_value_is_not_a_formula() -> None:
    """Only a value's first character makes it a formula: both paths accept this one
    (hypothesis once found the fast path refusing it)."""
    _check(orjson.dumps([{**ROW, "category": "dj", "name": "\n@:"}]), "json", set())
