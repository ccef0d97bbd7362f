"""The stored form of a cached HTTP response, and its check on every read.

An entry is a JSON object: `status` (always 200: nothing else is stored), `headers`
(`[name, value]` pairs as ASGI sends them), `etag`, and the body as `body` (UTF-8
text) or `body64` (base64). The cache authenticates entries; this check is the second
line — an authentic entry of the wrong shape (an older format, a bug) must be a miss,
not a 500 on a wedding-day route or a response-splitting header. What it accepts is
exactly what `new_entry` writes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from typing import Any

from wedsync_perf.errors import CorruptData

__all__ = ["Entry", "body_of", "check_entry", "etag_of", "new_entry"]

Entry = dict[str, Any]
_MAX_HEADERS = 64
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]{1,64}")  # RFC 9110 token, lower-case (ASGI)
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]{0,4096}")  # no CR, LF, NUL or other controls
_ETAG = re.compile(r'"[A-Za-z0-9_-]{22}"')
_NEVER_STORED = frozenset({"set-cookie"})
_KEYS = frozenset({"status", "headers", "etag", "body", "body64"})


def etag_of(body: bytes) -> str:
    """A strong ETag: quoted, 22 base64url characters of the body's SHA-256."""
    digest = hashlib.sha256(body).digest()[:16]
    return '"' + base64.urlsafe_b64encode(digest).rstrip(b"=").decode() + '"'


def new_entry(headers: Sequence[tuple[bytes, bytes]], body: bytes, etag: str) -> Entry:
    entry: Entry = {
        "status": 200,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers],
        "etag": etag,
    }
    try:
        entry["body"] = body.decode()
    except UnicodeDecodeError:
        entry["body64"] = base64.b64encode(body).decode()
    return entry


def body_of(entry: Entry) -> bytes:
    text = entry.get("body")
    return text.encode() if isinstance(text, str) else base64.b64decode(entry["body64"])


def check_entry(value: Any) -> Entry:
    """`value` if it is an entry `new_entry` could have written, with an ETag that is
    its body's; else raises `CorruptData` naming the first fault. O(body size)."""
    if not isinstance(value, dict) or not set(value) <= _KEYS:
        raise CorruptData("cached response: not an entry object")
    status = value.get("status")
    if type(status) is not int or status != 200:
        raise CorruptData(f"cached response: status {status!r}, only 200 is stored")
    _check_headers(value.get("headers"))
    etag = value.get("etag")
    if not isinstance(etag, str) or _ETAG.fullmatch(etag) is None:
        raise CorruptData("cached response: malformed etag")
    if ("body" in value) == ("body64" in value):
        raise CorruptData("cached response: needs exactly one of body, body64")
    if "body" in value and not isinstance(value["body"], str):
        raise CorruptData("cached response: body is not text")
    if "body64" in value:
        if not isinstance(value["body64"], str):
            raise CorruptData("cached response: body64 is not text")
        try:
            base64.b64decode(value["body64"], validate=True)
        except binascii.Error:
            raise CorruptData("cached response: body64 is not base64") from None
    body = body_of(value)
    if etag_of(body) != etag:
        raise CorruptData("cached response: etag is not the body's")
    for name, header_value in value["headers"]:
        if name == "etag" and header_value != etag:
            raise CorruptData("cached response: etag header differs from the entry's")
        if name == "content-length" and header_value != str(len(body)):
            raise CorruptData("cached response: content-length is not the body's")
    return value


def _check_headers(headers: Any) -> None:
    if not isinstance(headers, list) or len(headers) > _MAX_HEADERS:
        raise CorruptData(f"cached response: headers not a list of at most {_MAX_HEADERS}")
    for pair in headers:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise CorruptData("cached response: a header is not a [name, value] pair")
        name, value = pair
        if not (isinstance(name, str) and isinstance(value, str)):
            raise CorruptData("cached response: a header name or value is not text")
        if _NAME.fullmatch(name) is None or name in _NEVER_STORED:
            raise CorruptData(f"cached response: header name {name[:64]!r} not accepted")
        if _VALUE.fullmatch(value) is None:
            raise CorruptData(f"cached response: header {name!r} has a control character")
