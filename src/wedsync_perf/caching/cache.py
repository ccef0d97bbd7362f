"""`Cache`: tenant-scoped, tag-invalidated, stampede-safe caching over a `Backend`, with
an optional coherent in-process tier.

Read path: L1 (if its invalidation bus is connected) → backend (one round trip; stale
tags already filtered server-side) → loader. Misses of one key load once per process
(single flight) and once across processes (a short lock; waiters poll at most every
10 ms, then load themselves if the holder died). Hits near expiry refresh early with
probability e^(−t/(δβ)) (XFetch, Vattani et al. 2015); expired values within a data
class's stale window are served while one refresh runs. A backend that errs or is slow
is skipped (circuit breaker, bounded timeouts): the cache never fails a request.

Nothing read back is trusted: every entry is authenticated (see `envelope`) and capped
in size by its data class. An entry that fails any check is *rejected*: counted by
reason (`REJECT_REASONS`), deleted, and treated as a miss — so the loader runs and the
right value is stored again. It is never served and never raises.

An invalidation or delete the backend did not take (Redis down, hung, its breaker
open) is kept and sent again before this cache's next backend read or invalidation
goes through; until then this process treats what it names as a miss. Other processes
may read such an entry from Redis until the replay (this process's first call after
Redis answers again), or, if this process is gone first, until the entry's TTL. At
most `_MAX_UNSENT` names are kept, oldest dropped first (then the TTL is the bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

from pydantic import BaseModel, ValidationError

from wedsync_perf.breaker import BreakerState, CircuitBreaker
from wedsync_perf.caching import serialization
from wedsync_perf.caching.backends import Backend
from wedsync_perf.caching.crypto import MAC_BYTES, EntrySigner, KeyNamer, Keyring, SealError
from wedsync_perf.caching.envelope import SEALED, Envelope, bound, header, parse
from wedsync_perf.caching.local import InvalidationBus, LocalTier
from wedsync_perf.caching.policy import CachePolicy, DataPolicy
from wedsync_perf.errors import BackendUnavailable, CorruptData, InvalidValue
from wedsync_perf.keys import RedisKeys

__all__ = ["REJECT_REASONS", "Cache", "CacheStats", "StoreOutcome"]

_log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class _Failed:
    """Returned by `_call` when the backend failed or was skipped."""


_FAILED = _Failed()
_POLL_S = 0.01
_MAX_UNSENT = 10_000

# Why an entry read back was rejected (the `reason` label of wedsync_cache_rejected_total).
REJECT_REASONS = {
    "oversized": "longer than its data class's max_bytes",
    "malformed": "no well-formed header of this format version",
    "data_class": "written for another data class",
    "forged": "fails authentication: forged, moved, replayed with another header, or cut",
    "retired_key": "sealed with a key no longer in the keyring",
    "no_keyring": "sealed, and this cache has no keyring",
    "unsealed": "a sensitive data class stored unsealed",
    "shape": "authentic, but not the value its reader expects",
}


class StoreOutcome(StrEnum):
    """What a write did; anything but STORED left no entry behind."""

    STORED = "stored"
    NO_KEYRING = "no keyring"  # a sensitive data class and no keyring: never stored
    OVERSIZED = "oversized"  # longer than the data class's max_bytes
    UNAVAILABLE = "backend unavailable"


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ClassCounters:
    hits_local: int = 0
    hits_backend: int = 0
    misses: int = 0
    stale_served: int = 0
    early_refreshes: int = 0
    loader_calls: int = 0
    loader_seconds: float = 0.0
    corrupt: int = 0  # entries rejected, whatever the reason
    backend_errors: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # by REJECT_REASONS key
    not_stored: dict[str, int] = field(default_factory=dict)  # by StoreOutcome value


@dataclass
class CacheStats:
    """Counters per data class (exported by `wedsync_perf.caching.metrics`)."""

    by_class: dict[str, ClassCounters] = field(default_factory=dict)

    def of(self, data_class: str) -> ClassCounters:
        counters = self.by_class.get(data_class)
        if counters is None:
            counters = self.by_class[data_class] = ClassCounters()
        return counters


class Cache:
    def __init__(
        self,
        backend: Backend,
        *,
        secret: bytes,
        keyring: Keyring | None = None,
        policy: CachePolicy | None = None,
        local: LocalTier | None = None,
        bus: InvalidationBus | None = None,
        timeout_s: float = 0.1,
        breaker: CircuitBreaker | None = None,
        lock_ttl_s: float = 5.0,
        keys: RedisKeys | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`secret` keys the HMAC of key names and, derived from it, the MAC of
        entries (≥ 16 bytes; every process sharing the backend needs the same one).
        Without a `keyring`,
        data classes marked sensitive are never stored (always loaded). `keys` lays out
        the names (default prefix without one; `build_cache` passes the settings')."""
        self.backend = backend
        self.names = KeyNamer(secret, keys or RedisKeys())
        self.signer = EntrySigner(secret)
        self.keyring = keyring
        self.policy = policy or CachePolicy()
        self.local = local
        self.bus = bus
        if bus is not None and local is None:
            raise InvalidValue("local", None, "the local tier an invalidation bus keeps coherent")
        if local is not None and bus is None:
            local.enabled = True  # one process, one tier: nothing to keep coherent
        self.timeout_s = timeout_s
        self.breaker = breaker or CircuitBreaker()
        self.lock_ttl_s = lock_ttl_s
        self.stats = CacheStats()
        self._clock = clock
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._refreshing: set[str] = set()  # one background refresh per key
        # Tag keys / entry names the backend has not taken yet, oldest first (see above).
        self._unsent_tags: dict[str, None] = {}
        self._unsent_keys: dict[str, None] = {}
        self._replaying = False
        self._rng = random.Random()

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        if self.bus is not None:
            self.bus.start()

    async def stop(self) -> None:
        """Cancel background refreshes (and wait for them), stop the bus."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.bus is not None:
            await self.bus.stop()

    # -- backend calls: timeouts and the breaker, in one place --------------------

    async def _call(self, awaitable: Awaitable[T], data_class: str = "default") -> T | _Failed:
        if not self.breaker.allow():
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            return _FAILED
        try:
            # asyncio.timeout, not wait_for: wait_for wraps every call in a new task.
            async with asyncio.timeout(self.timeout_s):
                result = await awaitable
        except (BackendUnavailable, TimeoutError) as exc:  # anything else is a bug: raised
            return self._failed(exc, data_class)
        self.breaker.success()
        return result

    def _failed(self, exc: BaseException, data_class: str) -> _Failed:
        self.breaker.failure()
        self.stats.of(data_class).backend_errors += 1
        _log.debug("cache backend call failed: %r", exc)
        return _FAILED

    # -- public API ---------------------------------------------------------------

    async def get(
        self,
        key: str,
        *,
        tenant: str | int | None,
        data_class: str = "default",
        model: type[BaseModel] | None = None,
        default: Any = None,
        check: Callable[[Any], Any] | None = None,
    ) -> Any:
        """The cached value, or `default` on a miss (never raises for cache trouble;
        raises `InvalidValue` for a data class the policy does not name). `check`
        validates a decoded value (its result is what is returned): raising
        ValueError or TypeError rejects the entry as `shape`."""
        found, value = await self._read(
            self.names.entry(tenant, key), data_class, model, check=check
        )
        return value if found else default

    async def set(
        self,
        key: str,
        value: Any,
        *,
        tenant: str | int | None,
        data_class: str = "default",
        tags: Iterable[str] = (),
        ttl_s: float | None = None,
        wedding_date: date | None = None,
    ) -> StoreOutcome:
        """Store `value`; the outcome says whether it was and, if not, why. Raises
        `InvalidValue` for an unknown data class, TypeError for a value JSON cannot
        represent."""
        refused = self.refuses(data_class)
        if refused is not None:
            self._not_stored(data_class, refused)
            return refused
        entry = self.names.entry(tenant, key)
        tag_keys = tuple(self.names.tag(tenant, t) for t in tags)
        seen = self.local.sequence if self.local is not None else 0
        versions = await self._call(self.backend.tag_versions(tag_keys), data_class)
        if isinstance(versions, _Failed):
            return StoreOutcome.UNAVAILABLE
        ttl = ttl_s if ttl_s is not None else self.policy.ttl_s(data_class, wedding_date)
        return await self._store(entry, value, tag_keys, versions, ttl, 0.0, data_class, seen)

    def refuses(self, data_class: str) -> StoreOutcome | None:
        """Why this cache never stores `data_class` (None: it does). Raises
        `InvalidValue` for a data class the policy does not name."""
        if self.policy.of(data_class).sensitive and self.keyring is None:
            return StoreOutcome.NO_KEYRING
        return None

    async def stored(self, key: str, *, tenant: str | int | None) -> bool | None:
        """Whether the backend holds `key` (this process's local tier is not asked);
        None when the backend cannot be asked now. How a warmer learns that Redis came
        back empty."""
        # Capped at 0 bytes: presence is all that is asked, whatever the entry's size.
        blob = await self._call(self.backend.get(self.names.entry(tenant, key), 0))
        return None if isinstance(blob, _Failed) else blob is not None

    async def delete(self, key: str, *, tenant: str | int | None) -> None:
        entry = self.names.entry(tenant, key)
        if self.local is not None:
            self.local.drop_keys([entry])
        if isinstance(await self._call(self.backend.delete(entry)), _Failed):
            self._keep_unsent(self._unsent_keys, [entry])
        if self.local is not None:
            self.local.drop_keys([entry])
        if self.bus is not None:
            await self._call(self.bus.publish(keys=[entry]))

    async def invalidate(self, *tags: str, tenant: str | int | None) -> None:
        """Every entry carrying any of `tags` is gone for every read that starts after
        this returns (backend: atomically; other processes' L1: within the bus's
        delivery time). O(1) per tag, whatever the number of entries."""
        tag_keys = [self.names.tag(tenant, t) for t in tags]
        if not tag_keys:
            return
        if self.local is not None:
            self.local.drop_tags(tag_keys)
        await self._replay_unsent()
        if isinstance(
            await self._call(self.backend.bump(tag_keys, self.policy.longest_ttl_s)), _Failed
        ):
            self._keep_unsent(self._unsent_tags, tag_keys)
        if self.local is not None:
            self.local.drop_tags(tag_keys)  # again: a fill that raced the bump is dropped
        if self.bus is not None:
            await self._call(self.bus.publish(tags=tag_keys))

    async def get_or_set(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        *,
        tenant: str | int | None,
        data_class: str = "default",
        tags: Iterable[str] = (),
        ttl_s: float | None = None,
        wedding_date: date | Callable[[Any], date | None] | None = None,
        model: type[BaseModel] | None = None,
        on_hit: Callable[[], None] | None = None,
    ) -> T:
        """The cached value, else `loader()`'s (stored). Loader errors propagate.

        `wedding_date` may be a function of the loaded value (a timeline knows its
        wedding's date); `on_hit` is called when the value came from the cache."""
        policy = self.policy.of(data_class)
        if policy.sensitive and self.keyring is None:
            self.stats.of(data_class).loader_calls += 1
            self._not_stored(data_class, StoreOutcome.NO_KEYRING)
            return await loader()  # never store sensitive data unsealed
        entry = self.names.entry(tenant, key)
        if self.local is not None and policy.local:
            hit, value = self.local.get(entry)
            if hit:
                self.stats.of(data_class).hits_local += 1
                if on_hit is not None:
                    on_hit()
                return value  # type: ignore[no-any-return]
        tag_keys = tuple(self.names.tag(tenant, t) for t in tags)
        ttl = self._ttl_for(data_class, ttl_s, wedding_date)

        async def read_then_load() -> T:
            found, value = await self._read(
                entry, data_class, model, (loader, tag_keys, ttl), local_checked=True
            )
            if found:
                if on_hit is not None:
                    on_hit()
                return value  # type: ignore[no-any-return]
            return await self._load(entry, loader, tag_keys, ttl, data_class, model)

        # One read (and at most one load) per key per process, however many callers.
        return await self._single_flight(entry, read_then_load)

    def _ttl_for(
        self,
        data_class: str,
        ttl_s: float | None,
        wedding_date: date | Callable[[Any], date | None] | None,
    ) -> Callable[[Any], float]:
        if ttl_s is not None:
            return lambda _value: ttl_s
        if callable(wedding_date):
            return lambda value: self.policy.ttl_s(data_class, wedding_date(value))
        fixed = self.policy.ttl_s(data_class, wedding_date)
        return lambda _value: fixed

    def cached(
        self,
        *,
        key: Callable[P, str],
        tenant: Callable[P, str | int | None],
        data_class: str = "default",
        tags: Callable[P, Iterable[str]] | None = None,
        model: type[BaseModel] | None = None,
    ) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
        """Decorate an async function; `key`, `tenant` and `tags` receive its arguments."""

        def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
            @functools.wraps(fn)
            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                return await self.get_or_set(
                    key(*args, **kwargs),
                    lambda: fn(*args, **kwargs),
                    tenant=tenant(*args, **kwargs),
                    data_class=data_class,
                    tags=tags(*args, **kwargs) if tags is not None else (),
                    model=model,
                )

            return wrapper

        return decorate

    # -- internals ----------------------------------------------------------------

    async def _read(
        self,
        entry: str,
        data_class: str,
        model: type[BaseModel] | None,
        refresh: tuple[Callable[[], Awaitable[Any]], tuple[str, ...], Callable[[Any], float]]
        | None = None,
        local_checked: bool = False,
        check: Callable[[Any], Any] | None = None,
    ) -> tuple[bool, Any]:
        policy = self.policy.of(data_class)
        counters = self.stats.of(data_class)
        local = self.local if policy.local else None
        if local is not None:
            seen = local.sequence  # before the backend read: see LocalTier.put
            if not local_checked:
                hit, value = local.get(entry)
                if hit:
                    counters.hits_local += 1
                    return True, value
        if self._unsent_tags or self._unsent_keys:
            await self._replay_unsent()
            if entry in self._unsent_keys:
                counters.misses += 1
                return False, None
        blob = await self._call(self.backend.get(entry, policy.max_bytes), data_class)
        if isinstance(blob, _Failed) or blob is None:
            counters.misses += 1
            return False, None
        try:
            envelope, value = self._open(entry, blob, data_class, policy, model, check)
        except _Rejected as rejected:
            await self._reject(entry, data_class, rejected.reason)
            return False, None
        if self._unsent_tags and any(tag in self._unsent_tags for tag, _ in envelope.tags):
            counters.misses += 1  # invalidated here, not yet in the backend
            return False, None
        now_ms = self._clock() * 1000
        remaining_ms = envelope.expires_ms - now_ms
        if remaining_ms <= 0:
            if refresh is None or -remaining_ms > policy.stale_s * 1000:
                counters.misses += 1
                return False, None
            counters.stale_served += 1
            self._refresh_later(entry, refresh, data_class, model)
            return True, value
        if (
            refresh is not None
            and policy.early_beta > 0
            and envelope.delta_ms > 0
            and -envelope.delta_ms * policy.early_beta * math.log(self._rng.random() or 1e-12)
            >= remaining_ms
        ):
            counters.early_refreshes += 1
            self._refresh_later(entry, refresh, data_class, model)
        counters.hits_backend += 1
        if local is not None:
            local.put(entry, value, remaining_ms / 1000, tuple(t for t, _ in envelope.tags), seen)
        return True, value

    def _open(
        self,
        entry: str,
        blob: bytes,
        data_class: str,
        policy: DataPolicy,
        model: type[BaseModel] | None,
        check: Callable[[Any], Any] | None,
    ) -> tuple[Envelope, Any]:
        """The entry's envelope and value, once every check passed; else raises
        `_Rejected` naming the first that failed (cheapest first)."""
        if len(blob) > policy.max_bytes:
            raise _Rejected("oversized")
        try:
            envelope = parse(blob)
        except CorruptData:
            raise _Rejected("malformed") from None
        if envelope.data_class != data_class:
            raise _Rejected("data_class")
        bound_to = bound(entry, envelope.header)
        if envelope.flags & SEALED:
            if self.keyring is None:
                raise _Rejected("no_keyring")
            if not self.keyring.knows(envelope.body):
                raise _Rejected("retired_key")
            try:
                payload = self.keyring.open(envelope.body, bound_to)
            except SealError:
                raise _Rejected("forged") from None
        else:
            if policy.sensitive:
                raise _Rejected("unsealed")
            mac, payload = envelope.body[:MAC_BYTES], envelope.body[MAC_BYTES:]
            if not self.signer.verify(bound_to, payload, mac):
                raise _Rejected("forged")
        try:
            value = serialization.decode(payload, model)
            if check is not None:
                value = check(value)
        except (ValueError, TypeError, ValidationError, UnicodeDecodeError):
            raise _Rejected("shape") from None
        return envelope, value

    async def _reject(self, entry: str, data_class: str, reason: str) -> None:
        counters = self.stats.of(data_class)
        counters.rejected[reason] = counters.rejected.get(reason, 0) + 1
        counters.corrupt += 1
        counters.misses += 1
        _log.debug("cache entry rejected (%s, %s)", data_class, reason)
        await self._call(self.backend.delete(entry), data_class)

    def _not_stored(self, data_class: str, outcome: StoreOutcome) -> None:
        counters = self.stats.of(data_class)
        counters.not_stored[outcome.value] = counters.not_stored.get(outcome.value, 0) + 1

    def _keep_unsent(self, unsent: dict[str, None], names: Iterable[str]) -> None:
        for name in names:
            unsent.pop(name, None)
            unsent[name] = None
        while len(unsent) > _MAX_UNSENT:
            dropped = next(iter(unsent))
            del unsent[dropped]
            _log.warning("cache: an unsent invalidation was dropped (its entries expire)")

    async def _replay_unsent(self) -> None:
        """Send what the backend did not take, one replay at a time; keep what fails.
        Only while the breaker is closed: its probe is a caller's own call."""
        if self._replaying or not (self._unsent_tags or self._unsent_keys):
            return
        if self.breaker.state is not BreakerState.CLOSED:
            return
        self._replaying = True
        try:
            tags, keys = list(self._unsent_tags), list(self._unsent_keys)
            if tags:
                keep_s = self.policy.longest_ttl_s
                if isinstance(await self._call(self.backend.bump(tags, keep_s)), _Failed):
                    return
                for tag in tags:
                    self._unsent_tags.pop(tag, None)
            if keys:
                if isinstance(await self._call(self._delete_all(keys)), _Failed):
                    return
                for key in keys:
                    self._unsent_keys.pop(key, None)
            if self.bus is not None:  # other processes' L1 (off while the bus was down)
                await self._call(self.bus.publish(keys=keys, tags=tags))
        finally:
            self._replaying = False

    async def _delete_all(self, entries: Sequence[str]) -> None:
        for entry in entries:
            await self.backend.delete(entry)

    def _refresh_later(
        self,
        entry: str,
        refresh: tuple[Callable[[], Awaitable[Any]], tuple[str, ...], Callable[[Any], float]],
        data_class: str,
        model: type[BaseModel] | None,
    ) -> None:
        if entry in self._refreshing:
            return
        self._refreshing.add(entry)
        loader, tag_keys, ttl = refresh

        async def run() -> None:
            try:
                with contextlib.suppress(Exception):  # the caller already has a value
                    await self._load(entry, loader, tag_keys, ttl, data_class, model)
            finally:
                self._refreshing.discard(entry)

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _single_flight(self, entry: str, work: Callable[[], Awaitable[T]]) -> T:
        running = self._inflight.get(entry)
        if running is not None:
            result: T = await asyncio.shield(running)
            return result
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[entry] = future
        try:
            value = await work()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._inflight[entry]

    async def _load(
        self,
        entry: str,
        loader: Callable[[], Awaitable[T]],
        tag_keys: tuple[str, ...],
        ttl: Callable[[Any], float],
        data_class: str,
        model: type[BaseModel] | None,
    ) -> T:
        # Tag versions (and the L1 sequence) are read *before* loading: if an
        # invalidation lands while the loader runs, what it loaded is never served.
        seen = self.local.sequence if self.local is not None else 0
        versions = await self._call(self.backend.tag_versions(tag_keys), data_class)
        lock_key = self.names.lock(entry)
        token = await self._call(self.backend.acquire(lock_key, self.lock_ttl_s), data_class)
        if token is None:  # another process is loading: wait for its value
            deadline = time.monotonic() + self.lock_ttl_s
            delay = _POLL_S
            while time.monotonic() < deadline:
                await asyncio.sleep(delay)
                found, value = await self._read(entry, data_class, model)
                if found:
                    return value  # type: ignore[no-any-return]
                delay = min(delay * 1.5, 0.1)
        counters = self.stats.of(data_class)
        started = time.monotonic()
        try:
            value = await loader()
        finally:
            counters.loader_calls += 1
            counters.loader_seconds += time.monotonic() - started
            if isinstance(token, str):
                await self._call(self.backend.release(lock_key, token), data_class)
        if not isinstance(versions, _Failed):
            delta = time.monotonic() - started
            await self._store(entry, value, tag_keys, versions, ttl(value), delta, data_class, seen)
        return value

    async def _store(
        self,
        entry: str,
        value: Any,
        tag_keys: Sequence[str],
        versions: Sequence[int],
        ttl: float,
        delta_s: float,
        data_class: str,
        seen_sequence: int,
    ) -> StoreOutcome:
        """Write to the backend, then to L1 — unless an invalidation was applied since
        `seen_sequence` (then the value may predate it and only the backend, whose tag
        check covers that case, gets it). An entry over the cap is not written, and
        what the key held before is deleted (it is older than `value`)."""
        policy: DataPolicy = self.policy.of(data_class)
        payload = serialization.encode(value)
        if policy.sensitive and self.keyring is None:
            self._not_stored(data_class, StoreOutcome.NO_KEYRING)
            return StoreOutcome.NO_KEYRING
        flags = SEALED if policy.sensitive else 0
        expires_ms = int((self._clock() + ttl) * 1000)
        tags = list(zip(tag_keys, versions, strict=True))
        head = header(tags, data_class, expires_ms, int(delta_s * 1000), flags)
        bound_to = bound(entry, head)
        if self.keyring is not None and policy.sensitive:
            blob = head + self.keyring.seal(payload, bound_to)
        else:
            blob = head + self.signer.sign(bound_to, payload) + payload
        if len(blob) > policy.max_bytes:
            self._not_stored(data_class, StoreOutcome.OVERSIZED)
            if self.local is not None:
                self.local.drop_keys([entry])
            if isinstance(await self._call(self.backend.delete(entry), data_class), _Failed):
                self._keep_unsent(self._unsent_keys, [entry])
            return StoreOutcome.OVERSIZED
        stored = await self._call(self.backend.set(entry, blob, ttl + policy.stale_s), data_class)
        if self.local is not None:
            unchanged = seen_sequence == self.local.sequence
            self.local.drop_keys([entry])  # older fills racing this write are void
            if policy.local and unchanged and not isinstance(stored, _Failed):
                self.local.put(entry, value, ttl, tuple(tag_keys), self.local.sequence)
        if isinstance(stored, _Failed):
            return StoreOutcome.UNAVAILABLE
        if self.bus is not None:
            await self._call(self.bus.publish(keys=[entry]), data_class)
        return StoreOutcome.STORED
