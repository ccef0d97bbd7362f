"""Authentication and rate limiting, before anything is cached, prioritised or read.

`AccessMiddleware` asks the app's authenticator who an API key belongs to and counts the
request against that key's rate limit; the `Tenant` travels on in the scope. It runs
after admission control (a shed request costs no lookup) and before the response cache
(nothing cached is served to a caller who was not authenticated and counted), and it
reads no request body: an unauthenticated request costs a header parse and one lookup.

Refusals are answered here, in the bytes FastAPI gives an `HTTPException` — a client
cannot tell which layer refused it:

- 401 `{"detail":"missing X-API-Key header"}` / `"unknown or revoked API key"`, with
  `WWW-Authenticate: ApiKey`;
- 429 `{"detail":"rate limit of … per API key exceeded"}` with `Retry-After`;
- 503 with `Retry-After` when the authenticator itself fails (its store is down).

Routes the route table marks public (probes, docs, guarded monitoring endpoints) and
requests no route matches (a 404 needs no key) pass through untouched.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import orjson

from wedsync_perf.asgi import ASGIApp, Receive, Scope, Send, header, respond
from wedsync_perf.pipeline.ratelimit import RateLimiter
from wedsync_perf.pipeline.routing import ROUTE_KEY, ResolvedRoute

__all__ = [
    "TENANT_KEY",
    "AccessMiddleware",
    "ApiKeyAuthenticator",
    "Authenticate",
    "Tenant",
    "hash_key",
    "tenant_of",
]

_log = logging.getLogger(__name__)

TENANT_KEY = "wedsync_perf.tenant"
"""Scope key of the authenticated `Tenant`."""


@dataclass(frozen=True, slots=True)
class Tenant:
    """Who a request acts for: the tenant, and a short non-secret handle of the key
    (the first bytes of its hash) for rate limits and logs."""

    id: int
    key_id: str


class Authenticate(Protocol):
    """The app's authenticator: an API key → its tenant, or None when unknown."""

    def __call__(self, api_key: str) -> Awaitable[Tenant | None]: ...


def hash_key(key: str) -> bytes:
    """How API keys are stored and looked up: SHA-256, never the key in clear."""
    return hashlib.sha256(key.encode()).digest()


def tenant_of(scope: Scope) -> Tenant | None:
    tenant: Tenant | None = scope.get(TENANT_KEY)
    return tenant


class ApiKeyAuthenticator:
    """An `Authenticate` over the app's own lookup (key hash → tenant id), trusting a
    resolved key for `ttl_s`: the request path then costs a hash and a dict lookup, and
    revoking a key takes effect within `ttl_s`. At most `max_entries` keys are kept
    (least recently resolved dropped first)."""

    def __init__(
        self,
        lookup: Callable[[bytes], Awaitable[int | None]],
        *,
        ttl_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._known: OrderedDict[bytes, tuple[Tenant, float]] = OrderedDict()

    async def __call__(self, api_key: str) -> Tenant | None:
        digest = hash_key(api_key)
        now = self._clock()
        known = self._known.get(digest)
        if known is not None and known[1] > now:
            return known[0]
        tenant_id = await self._lookup(digest)
        if tenant_id is None:
            self._known.pop(digest, None)
            return None
        tenant = Tenant(id=tenant_id, key_id=digest[:6].hex())
        self._known[digest] = (tenant, now + self._ttl)
        self._known.move_to_end(digest)
        while len(self._known) > self._max:
            self._known.popitem(last=False)
        return tenant


_CHALLENGE = [(b"www-authenticate", b"ApiKey")]
_RETRY = [(b"retry-after", b"1")]


class AccessMiddleware:
    """Authenticate and rate-limit every request to a non-public route."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Authenticate,
        limiter: RateLimiter | None = None,
        header_name: str = "X-API-Key",
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.limiter = limiter
        self._header = header_name.lower().encode("latin-1")
        self._missing = _detail(f"missing {header_name} header")
        self._unknown = _detail("unknown or revoked API key")
        self._unavailable = _detail("authentication temporarily unavailable")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: ResolvedRoute | None = scope.get(ROUTE_KEY)
        if scope["type"] != "http" or route is None or route.public:
            await self.app(scope, receive, send)
            return
        raw = header(scope, self._header)
        if not raw:
            await respond(send, 401, self._missing, _CHALLENGE)
            return
        try:
            tenant = await self.authenticate(raw.decode("latin-1"))
        except Exception as exc:  # the key store is down: a fault to retry, not a bug
            _log.warning("authentication unavailable: %s", type(exc).__name__)
            await respond(send, 503, self._unavailable, _RETRY)
            return
        if tenant is None:
            await respond(send, 401, self._unknown, _CHALLENGE)
            return
        if self.limiter is not None:
            retry_after = await self.limiter.retry_after(tenant.key_id)
            if retry_after is not None:
                await respond(
                    send, 429, self.limiter.refusal, [(b"retry-after", str(retry_after).encode())]
                )
                return
        scope[TENANT_KEY] = tenant
        await self.app(scope, receive, send)


def _detail(text: str) -> bytes:
    return orjson.dumps({"detail": text})
