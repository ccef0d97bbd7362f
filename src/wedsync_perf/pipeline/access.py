"""Authentication and rate limiting, before anything is cached, prioritised or read.

`AccessMiddleware` asks the app's authenticator who an API key belongs to and counts the
request against that key's rate limit; the `Tenant` travels on in the scope. It runs
after admission control (a shed request costs no lookup) and before the response cache
(nothing cached is served to a caller who was not authenticated and counted), and it
reads no request body: an unauthenticated request costs a header parse and one lookup.

Unknown keys are cheap too: `ApiKeyAuthenticator` remembers a key it failed to find
for a few seconds, and `AccessMiddleware` counts failed authentications per client
address (`FailureLimit`): past the limit, a key it does not already know is refused with
429 before any lookup, so a flood of random keys costs a bounded number of queries. A
key it knows still passes: an address shared with an attacker keeps its valid clients.

Refusals are answered here, in the bytes FastAPI gives an `HTTPException` — a client
cannot tell which layer refused it:

- 401 `{"detail":"missing X-API-Key header"}` / `"unknown or revoked API key"`, with
  `WWW-Authenticate: ApiKey`;
- 429 `{"detail":"rate limit of … per API key exceeded"}` with `Retry-After`;
- 429 `{"detail":"too many failed authentications"}` with `Retry-After`;
- 503 with `Retry-After` when the authenticator itself fails (its store is down).

Routes the route table marks public (probes, docs, guarded monitoring endpoints) and
requests no route matches (a 404 needs no key) pass through untouched.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from wedsync_perf.asgi import ASGIApp, Receive, Scope, Send, header, respond
from wedsync_perf.errors import ConfigError
from wedsync_perf.pipeline.ratelimit import RateLimiter
from wedsync_perf.pipeline.routing import ROUTE_KEY, ResolvedRoute

__all__ = [
    "TENANT_KEY",
    "AccessMiddleware",
    "ApiKeyAuthenticator",
    "Authenticate",
    "FailureLimit",
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
    revoking a key takes effect within `ttl_s`. A key the lookup did not find is
    remembered as unknown for `unknown_ttl_s` (a key issued meanwhile works after at
    most that long). At most `max_entries` keys of each kind are kept (least recently
    resolved dropped first). `lookups` counts the calls to `lookup`."""

    def __init__(
        self,
        lookup: Callable[[bytes], Awaitable[int | None]],
        *,
        ttl_s: float,
        unknown_ttl_s: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl = ttl_s
        self._unknown_ttl = unknown_ttl_s
        self._max = max_entries
        self._clock = clock
        self._known: OrderedDict[bytes, tuple[Tenant, float]] = OrderedDict()
        self._unknown: OrderedDict[bytes, float] = OrderedDict()
        self.lookups = 0

    def remembers(self, api_key: str) -> bool:
        """Whether `api_key` would be answered without a lookup (known or unknown)."""
        return not isinstance(self._recall(hash_key(api_key), self._clock()), _Unseen)

    def _recall(self, digest: bytes, now: float) -> Tenant | _Unseen | None:
        known = self._known.get(digest)
        if known is not None and known[1] > now:
            return known[0]
        until = self._unknown.get(digest)
        if until is not None and until > now:
            return None
        return _UNSEEN

    async def __call__(self, api_key: str) -> Tenant | None:
        digest = hash_key(api_key)
        now = self._clock()
        remembered = self._recall(digest, now)
        if not isinstance(remembered, _Unseen):
            return remembered
        self.lookups += 1
        tenant_id = await self._lookup(digest)
        if tenant_id is None:
            self._known.pop(digest, None)
            if self._unknown_ttl > 0:
                _remember(self._unknown, digest, now + self._unknown_ttl, self._max)
            return None
        self._unknown.pop(digest, None)
        tenant = Tenant(id=tenant_id, key_id=digest[:6].hex())
        _remember(self._known, digest, (tenant, now + self._ttl), self._max)
        return tenant


class _Unseen:
    """What `_recall` answers for a key it has nothing on."""


_UNSEEN = _Unseen()


def _remember(entries: OrderedDict[bytes, Any], digest: bytes, value: Any, limit: int) -> None:
    entries[digest] = value
    entries.move_to_end(digest)
    while len(entries) > limit:
        entries.popitem(last=False)


class FailureLimit:
    """Failed authentications allowed per client address, in this process's memory
    (an attacker's misses cost no shared-store round trip). `limit` in `limits`
    notation; raises `ConfigError` when malformed."""

    def __init__(self, limit: str = "30/minute") -> None:
        try:
            self.item: RateLimitItem = parse(limit)
        except ValueError:
            raise ConfigError("failed-authentication limit", "expected e.g. '30/minute'") from None
        self._window = MovingWindowRateLimiter(MemoryStorage())
        self.refused = 0  # requests refused for it, this process

    async def retry_after(self, address: str) -> int | None:
        """None while `address` has failures left in the window (nothing is counted),
        else the seconds until it has again (at least 1)."""
        if await self._window.test(self.item, _FAILURES, address):
            return None
        stats = await self._window.get_window_stats(self.item, _FAILURES, address)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def failed(self, address: str) -> None:
        await self._window.hit(self.item, _FAILURES, address)


_FAILURES = "auth-failures"


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
        failures: FailureLimit | None = None,
        header_name: str = "X-API-Key",
    ) -> None:
        """`failures`: the per-address limit on failed authentications (None: none).
        It can skip the lookup only with an `ApiKeyAuthenticator`, which says what it
        already knows; with another authenticator every refused attempt is counted
        but still looked up."""
        self.app = app
        self.authenticate = authenticate
        self.limiter = limiter
        self.failures = failures
        self._remembers: Callable[[str], bool] | None = getattr(authenticate, "remembers", None)
        self._header = header_name.lower().encode("latin-1")
        self._missing = _detail(f"missing {header_name} header")
        self._unknown = _detail("unknown or revoked API key")
        self._unavailable = _detail("authentication temporarily unavailable")
        self._failing = _detail("too many failed authentications")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: ResolvedRoute | None = scope.get(ROUTE_KEY)
        if scope["type"] != "http" or route is None or route.public:
            await self.app(scope, receive, send)
            return
        raw = header(scope, self._header)
        if not raw:
            await respond(send, 401, self._missing, _CHALLENGE)
            return
        key = raw.decode("latin-1")
        failures = self.failures
        address = _address(scope)
        if failures is not None and (self._remembers is None or not self._remembers(key)):
            wait = await failures.retry_after(address)
            if wait is not None:  # a key not known here, from an address out of tries
                failures.refused += 1
                await respond(send, 429, self._failing, [(b"retry-after", str(wait).encode())])
                return
        try:
            tenant = await self.authenticate(key)
        except Exception as exc:  # the key store is down: a fault to retry, not a bug
            _log.warning("authentication unavailable: %s", type(exc).__name__)
            await respond(send, 503, self._unavailable, _RETRY)
            return
        if tenant is None:
            if failures is not None:
                await failures.failed(address)
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


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def _detail(text: str) -> bytes:
    return orjson.dumps({"detail": text})
