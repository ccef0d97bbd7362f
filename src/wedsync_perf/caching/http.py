"""HTTP response caching: strong ETags, conditional GETs, and a pure-ASGI response
cache for apps that resolve the caller before routing.

Rules (each closes a hole a peer has — see research/caching.md):
- GET and HEAD only; a request without a resolved tenant is never served from or
  stored in the cache; the key includes the tenant and the values of `vary` headers.
- Responses with `Set-Cookie`, `Cache-Control: no-store`, or a status other than 200
  are never stored; `max-age` (when given) caps the TTL.
- ETags are strong and deterministic (SHA-256 of the body), the same on every worker,
  so `If-None-Match` works behind a load balancer; a match answers 304.
- Clients cannot force a miss or a flush: request `Cache-Control` is ignored — on a
  wedding Saturday a client-side bypass would be a stampede lever.
- Responses carry `Cache-Control: private` unless the app set its own: they are one
  tenant's data and must not sit in shared proxies.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from wedsync_perf.caching.cache import Cache

__all__ = ["HttpCacheMiddleware", "etag_of", "matches"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


def etag_of(body: bytes) -> str:
    """A strong ETag: quoted, 22 base64url characters of the body's SHA-256."""
    digest = hashlib.sha256(body).digest()[:16]
    return '"' + base64.urlsafe_b64encode(digest).rstrip(b"=").decode() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match (weak comparison for GET): `*` or any listed tag."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return etag in candidates


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _max_age(cache_control: bytes | None) -> float | None:
    if not cache_control:
        return None
    for part in cache_control.decode("latin-1").split(","):
        key, _, value = part.strip().partition("=")
        if key.lower() in ("max-age", "s-maxage") and value.isdigit():
            return float(value)
    return None


class HttpCacheMiddleware:
    """Serve repeated GET/HEAD responses from `cache`, per tenant.

    `tenant_of(scope)` must return the caller's tenant as resolved by authentication
    *before* this middleware runs (so place it after auth and rate limiting), or None —
    then the request passes through untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: Cache,
        tenant_of: Callable[[Scope], str | int | None],
        vary: Sequence[str] = (),
        data_class: str = "http_response",
        max_body_bytes: int = 1024 * 1024,
    ) -> None:
        self.app = app
        self.cache = cache
        self.tenant_of = tenant_of
        self.vary = tuple(v.lower().encode() for v in vary)
        self.data_class = data_class
        self.max_body_bytes = max_body_bytes

    def _key(self, scope: Scope) -> str:
        headers = scope.get("headers", [])
        varied = [(_header(headers, name) or b"").decode("latin-1") for name in self.vary]
        query = scope.get("query_string", b"").decode("latin-1")
        return "http:" + "\x1f".join([scope.get("path", ""), query, *varied])

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        tenant = self.tenant_of(scope)
        if tenant is None:
            await self.app(scope, receive, send)
            return
        key = self._key(scope)
        if_none_match = _header(scope.get("headers", []), b"if-none-match")
        inm = if_none_match.decode("latin-1") if if_none_match else None
        cached = await self.cache.get(key, tenant=tenant, data_class=self.data_class)
        if isinstance(cached, dict):
            await self._replay(scope, send, cached, inm)
            return

        captured: dict[str, Any] = {"status": 0, "headers": [], "body": [], "size": 0}
        start: list[Message] = []
        passthrough = False

        async def capture(message: Message) -> None:
            # Held back until the response is complete (to hash it); a body growing past
            # `max_body_bytes` switches to plain pass-through, unstored.
            nonlocal passthrough
            if passthrough:
                await send(message)
                return
            if message["type"] == "http.response.start":
                start.append(message)
                captured["status"] = message["status"]
                captured["headers"] = list(message.get("headers", []))
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunk = message.get("body", b"")
            captured["size"] += len(chunk)
            if captured["size"] > self.max_body_bytes:
                passthrough = True
                await send(start[0])
                for held in captured["body"]:
                    await send({"type": "http.response.body", "body": held, "more_body": True})
                await send(message)
                return
            captured["body"].append(chunk)
            if not message.get("more_body"):
                await self._finish(scope, send, tenant, key, captured, inm)

        await self.app(scope, receive, capture)

    async def _finish(
        self,
        scope: Scope,
        send: Callable[[Message], Awaitable[None]],
        tenant: str | int,
        key: str,
        captured: dict[str, Any],
        inm: str | None,
    ) -> None:
        headers: list[tuple[bytes, bytes]] = captured["headers"]
        body = b"".join(captured["body"])
        status = captured["status"]
        too_big = False  # bodies past the limit never reach here (passed through)
        cache_control = _header(headers, b"cache-control")
        storable = (
            status == 200
            and not too_big
            and _header(headers, b"set-cookie") is None
            and b"no-store" not in (cache_control or b"").lower()
        )
        if status == 200 and not too_big:
            etag = etag_of(body)
            headers = [(k, v) for k, v in headers if k.lower() != b"etag"] + [
                (b"etag", etag.encode())
            ]
            if cache_control is None:
                headers.append((b"cache-control", b"private, no-cache"))
            if storable:
                entry = {
                    "status": status,
                    "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers],
                    "body": base64.b64encode(body).decode(),
                    "etag": etag,
                }
                await self.cache.set(
                    key, entry, tenant=tenant, data_class=self.data_class,
                    ttl_s=_max_age(cache_control),
                )  # fmt: skip
            if matches(inm, etag):
                await self._not_modified(send, etag, headers)
                return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    async def _replay(
        self,
        scope: Scope,
        send: Callable[[Message], Awaitable[None]],
        entry: dict[str, Any],
        inm: str | None,
    ) -> None:
        from wedsync_perf.monitoring.middleware import mark_cache_hit

        mark_cache_hit(scope)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in entry["headers"]]
        if matches(inm, entry["etag"]):
            await self._not_modified(send, entry["etag"], headers)
            return
        body = base64.b64decode(entry["body"])
        await send({"type": "http.response.start", "status": entry["status"], "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    @staticmethod
    async def _not_modified(
        send: Callable[[Message], Awaitable[None]], etag: str, headers: list[tuple[bytes, bytes]]
    ) -> None:
        keep = {b"cache-control", b"vary", b"expires", b"content-location", b"date"}
        kept = [(k, v) for k, v in headers if k.lower() in keep] + [(b"etag", etag.encode())]
        await send({"type": "http.response.start", "status": 304, "headers": kept})
        await send({"type": "http.response.body", "body": b""})
