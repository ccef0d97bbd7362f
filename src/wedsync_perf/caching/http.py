"""HTTP response caching: strong ETags, conditional GETs, and a pure-ASGI response
cache that answers a hit before the app (no routing, no handler, no database pool).

What is cached is declared per route (`CacheRule`, read by the route table at startup);
a route without a rule is never cached. Rules (each closes a hole a peer has — see
research/caching.md):
- GET and HEAD only, and only after authentication: a request without a tenant in the
  scope is never served from or stored in the cache; the key holds the tenant, the path,
  the query and the values of `vary` headers.
- Responses with `Set-Cookie`, `Cache-Control: no-store`, or a status other than 200
  are never stored; `max-age` (when given) caps the TTL.
- Tags come from the route's path parameters. A parameter that is a number but not
  written canonically (`/weddings/007`) is answered uncached: it would name one
  wedding under a second tag that no invalidation ever bumps.
- ETags are strong and deterministic (SHA-256 of the body), the same on every worker,
  so `If-None-Match` works behind a load balancer; a match answers 304.
- Clients cannot force a miss or a flush: request `Cache-Control` is ignored — on a
  wedding Saturday a client-side bypass would be a stampede lever.
- Responses carry `Cache-Control: private, no-cache` unless the app set its own, and
  `Vary` on the header that identifies the caller: they are one tenant's data.
- Concurrent misses of one key in one process make one call to the app; the others
  wait for its answer (a check-in invalidates the vendor list that every supplier on
  site then asks for at once).
- Every entry read back is checked before it is replayed (`stored_response`): one of
  the wrong shape, status or headers is rejected like a forged one — deleted, counted
  (`shape`), and answered by the app.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import date

import orjson

from wedsync_perf.asgi import ASGIApp, Message, Receive, Scope, Send, header
from wedsync_perf.caching.cache import Cache, StoreOutcome
from wedsync_perf.caching.stored_response import Entry, body_of, check_entry, etag_of, new_entry
from wedsync_perf.errors import ConfigError, InvalidValue
from wedsync_perf.monitoring.middleware import mark_cache_hit
from wedsync_perf.pipeline.access import TENANT_KEY, Tenant
from wedsync_perf.pipeline.routing import ROUTE_KEY, CacheRule, ResolvedRoute, path_params

__all__ = ["HttpCacheMiddleware", "ResponseCache", "etag_of", "matches"]

_KEPT_ON_304 = frozenset({b"cache-control", b"vary", b"expires", b"content-location", b"date"})
_CACHE_CONTROL = b"private, no-cache"


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match (weak comparison for GET): `*` or any listed tag."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return etag in candidates


def _find(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
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


class ResponseCache:
    """The cache of finished responses: what the middleware serves and stores, and
    what a warmer fills ahead of a wedding day (`fill`), so both agree byte for byte."""

    def __init__(
        self,
        cache: Cache,
        *,
        vary: Sequence[str] = (),
        vary_header: str | None = "X-API-Key",
        max_body_bytes: int = 1024 * 1024,
    ) -> None:
        """`vary`: request headers whose values are part of the key. `vary_header`:
        the header that identifies the caller, named in every answer's `Vary`."""
        self.cache = cache
        self.vary = tuple(v.lower().encode("latin-1") for v in vary)
        self.max_body_bytes = max_body_bytes
        self._vary_value = vary_header.encode("latin-1") if vary_header else None

    def check(self, rules: Collection[CacheRule]) -> None:
        """Fail at startup, not on a wedding day: every rule's data class must be one
        the cache's policy knows. Raises `ConfigError`."""
        known = self.cache.policy.policies
        for rule in rules:
            if rule.data_class not in known:
                accepted = ", ".join(sorted(known))
                raise ConfigError(
                    "cache rule", f"unknown data class {rule.data_class!r}; known: {accepted}"
                )

    def key(self, path: str, query: bytes, scope: Scope | None = None) -> str:
        varied = (
            [(header(scope, name) or b"").decode("latin-1") for name in self.vary] if scope else []
        )
        return "http:" + "\x1f".join([path, query.decode("latin-1"), *varied])

    @staticmethod
    def tags(rule: CacheRule, params: Mapping[str, str]) -> tuple[str, ...] | None:
        """The rule's tags for these parameters; None when one is a non-canonical
        number (see the module docstring)."""
        for value in params.values():
            if value.isdigit() and str(int(value)) != value:
                return None
        return tuple(tag.format_map(params) for tag in rule.tags)

    async def lookup(self, tenant: int | str, key: str, rule: CacheRule) -> Entry | None:
        """The stored answer, checked (`check_entry`); None on a miss or a rejection."""
        entry: Entry | None = await self.cache.get(
            key, tenant=tenant, data_class=rule.data_class, check=check_entry
        )
        return entry

    def finished(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[list[tuple[bytes, bytes]], str | None, bool]:
        """The headers a 200 answer is sent with (ETag, Cache-Control, Vary added), its
        ETag, and whether it may be stored. Other statuses go out unchanged."""
        if status != 200:
            return headers, None, False
        cache_control = _find(headers, b"cache-control")
        storable = (
            _find(headers, b"set-cookie") is None
            and b"no-store" not in (cache_control or b"").lower()
        )
        etag = etag_of(body)
        sent = [(k, v) for k, v in headers if k.lower() != b"etag"]
        sent.append((b"etag", etag.encode()))
        if cache_control is None:
            sent.append((b"cache-control", _CACHE_CONTROL))
        if self._vary_value is not None and _find(headers, b"vary") is None:
            sent.append((b"vary", self._vary_value))
        return sent, etag, storable

    async def store(
        self,
        tenant: int | str,
        key: str,
        rule: CacheRule,
        tags: Sequence[str],
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        etag: str,
    ) -> tuple[Entry, StoreOutcome]:
        """The entry (what waiting requests are answered with, stored or not) and
        whether the cache stored it."""
        entry = new_entry(headers, body, etag)
        outcome = await self.cache.set(
            key,
            entry,
            tenant=tenant,
            data_class=rule.data_class,
            tags=tags,
            ttl_s=_max_age(_find(headers, b"cache-control")),
            wedding_date=_wedding_date(rule, body),
        )
        return entry, outcome

    async def has(self, tenant: int | str, route: ResolvedRoute, path: str) -> bool:
        """Whether the shared cache holds `GET path`'s (no query) answer for `tenant`:
        the backend is asked, not this process's local tier, which outlives a Redis
        restart (a warmer must fill what the other instances read)."""
        if route.cache is None:
            return False
        return bool(await self.cache.stored(self.key(path, b""), tenant=tenant))

    async def fill(
        self,
        tenant: int | str,
        route: ResolvedRoute,
        params: Mapping[str, str],
        path: str,
        body: bytes,
        content_type: bytes = b"application/json",
    ) -> StoreOutcome:
        """Store `body` as `GET path`'s answer for `tenant` (see `has` to skip what is
        cached already); the outcome says whether it was stored and if not, why. For
        warming: the entry is what a request would have cached. Raises `InvalidValue`
        when the route caches nothing for these parameters."""
        rule = route.cache
        tags = None if rule is None else self.tags(rule, params)
        if rule is None or tags is None:
            raise InvalidValue("path", path, "a path of a cached route, ids written canonically")
        key = self.key(path, b"")
        raw = [(b"content-length", str(len(body)).encode()), (b"content-type", content_type)]
        headers, etag, _ = self.finished(200, raw, body)
        assert etag is not None  # a 200 always has one
        _, outcome = await self.store(tenant, key, rule, tags, headers, body, etag)
        return outcome


def _wedding_date(rule: CacheRule, body: bytes) -> date | None:
    if rule.wedding_date_field is None:
        return None
    try:
        value = orjson.loads(body).get(rule.wedding_date_field)
        return date.fromisoformat(value) if isinstance(value, str) else None
    except (orjson.JSONDecodeError, AttributeError, ValueError):
        return None


class HttpCacheMiddleware:
    """Serve repeated GET/HEAD answers of routes with a `CacheRule`, per tenant.

    Reads the route (`ClassifierMiddleware`) and the tenant (`AccessMiddleware`) from
    the scope, so it must sit inside both."""

    def __init__(self, app: ASGIApp, *, responses: ResponseCache) -> None:
        self.app = app
        self.responses = responses
        self._leaders: dict[tuple[int | str, str], asyncio.Future[Entry | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: ResolvedRoute | None = scope.get(ROUTE_KEY)
        tenant: Tenant | None = scope.get(TENANT_KEY)
        rule = route.cache if route is not None else None
        if rule is None or tenant is None or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        tags = self.responses.tags(rule, path_params(scope))
        if tags is None:
            await self.app(scope, receive, send)
            return
        responses = self.responses
        key = responses.key(scope["path"], scope.get("query_string", b""), scope)
        raw_inm = header(scope, b"if-none-match")
        inm = raw_inm.decode("latin-1") if raw_inm else None
        entry = await responses.lookup(tenant.id, key, rule)
        if entry is None:
            leader = self._leaders.get((tenant.id, key))
            if leader is not None:  # the same miss is being answered: wait for it
                entry = await asyncio.shield(leader)
        if entry is not None:
            mark_cache_hit(scope)
            await _replay(scope, send, entry, inm)
            return
        await self._lead(scope, receive, send, (tenant.id, key), rule, tags, inm)

    async def _lead(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        flight: tuple[int | str, str],
        rule: CacheRule,
        tags: tuple[str, ...],
        inm: str | None,
    ) -> None:
        done: asyncio.Future[Entry | None] = asyncio.get_running_loop().create_future()
        self._leaders[flight] = done
        captured = _Capture(self.responses, send, scope, flight[0], flight[1], rule, tags, inm)
        counters = self.responses.cache.stats.of(rule.data_class)
        started = time.monotonic()
        try:
            await self.app(scope, receive, captured.send)  # the app is this cache's loader
        finally:
            counters.loader_calls += 1
            counters.loader_seconds += time.monotonic() - started
            del self._leaders[flight]
            done.set_result(captured.entry)


class _Capture:
    """The app's answer, held back until complete (to hash and store it); a body growing
    past `max_body_bytes` switches to plain pass-through, unstored."""

    def __init__(
        self,
        responses: ResponseCache,
        send: Send,
        scope: Scope,
        tenant: int | str,
        key: str,
        rule: CacheRule,
        tags: tuple[str, ...],
        inm: str | None,
    ) -> None:
        self.responses, self._send, self.scope = responses, send, scope
        self.tenant, self.key, self.rule, self.tags, self.inm = tenant, key, rule, tags, inm
        self.entry: Entry | None = None
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._passthrough = False

    async def send(self, message: Message) -> None:
        if self._passthrough:
            await self._send(message)
            return
        if message["type"] == "http.response.start":
            self._start = message
            return
        if message["type"] != "http.response.body" or self._start is None:
            await self._send(message)
            return
        chunk = message.get("body", b"")
        self._size += len(chunk)
        if self._size > self.responses.max_body_bytes:
            self._passthrough = True
            await self._send(self._start)
            for held in self._chunks:
                await self._send({"type": "http.response.body", "body": held, "more_body": True})
            await self._send(message)
            return
        self._chunks.append(chunk)
        if not message.get("more_body"):
            await self._finish()

    async def _finish(self) -> None:
        assert self._start is not None  # body messages follow the start
        status: int = self._start["status"]
        body = b"".join(self._chunks)
        headers, etag, storable = self.responses.finished(
            status, list(self._start.get("headers", [])), body
        )
        if etag is not None:
            if storable:
                self.entry, _ = await self.responses.store(
                    self.tenant, self.key, self.rule, self.tags, headers, body, etag
                )
            if matches(self.inm, etag):
                await _not_modified(self._send, etag, headers)
                return
        await self._send({"type": "http.response.start", "status": status, "headers": headers})
        head = self.scope.get("method") == "HEAD"
        await self._send({"type": "http.response.body", "body": b"" if head else body})


async def _replay(scope: Scope, send: Send, entry: Entry, inm: str | None) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in entry["headers"]]
    etag: str = entry["etag"]
    if matches(inm, etag):
        await _not_modified(send, etag, headers)
        return
    body = body_of(entry)
    await send({"type": "http.response.start", "status": entry["status"], "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


async def _not_modified(send: Send, etag: str, headers: list[tuple[bytes, bytes]]) -> None:
    kept = [(k, v) for k, v in headers if k.lower() in _KEPT_ON_304 and k.lower() != b"etag"]
    kept.append((b"etag", etag.encode()))
    await send({"type": "http.response.start", "status": 304, "headers": kept})
    await send({"type": "http.response.body", "body": b""})
