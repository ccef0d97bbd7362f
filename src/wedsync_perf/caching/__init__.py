"""Caching: tenant-scoped, tag-invalidated, stampede-safe, optionally two-tier.

cache = build_cache(settings, redis=redis_client)   # or Cache(MemoryBackend(), secret=…)
timeline = await cache.get_or_set(
    f"timeline:{wedding_id}", load, tenant=tenant_id,
    data_class="wedding_timeline", tags=[f"wedding:{wedding_id}"], wedding_date=day,
)
await cache.invalidate(f"wedding:{wedding_id}", tenant=tenant_id)
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from wedsync_perf.breaker import BreakerState, CircuitBreaker
from wedsync_perf.caching.backends import Backend, MemoryBackend, RedisBackend
from wedsync_perf.caching.cache import REJECT_REASONS, Cache, CacheStats, StoreOutcome
from wedsync_perf.caching.crypto import EntrySigner, KeyNamer, Keyring, SealError
from wedsync_perf.caching.local import InvalidationBus, LocalTier
from wedsync_perf.caching.policy import DEFAULT_POLICIES, CachePolicy, DataPolicy
from wedsync_perf.errors import ConfigError
from wedsync_perf.keys import RedisKeys
from wedsync_perf.settings import PerfSettings

__all__ = [
    "DEFAULT_POLICIES",
    "REJECT_REASONS",
    "Backend",
    "BreakerState",
    "Cache",
    "CachePolicy",
    "CacheStats",
    "CircuitBreaker",
    "DataPolicy",
    "EntrySigner",
    "InvalidationBus",
    "KeyNamer",
    "Keyring",
    "LocalTier",
    "MemoryBackend",
    "RedisBackend",
    "SealError",
    "StoreOutcome",
    "build_cache",
    "parse_keyring",
]


def parse_keyring(text: str) -> Keyring:
    """`WEDSYNC_PERF_CACHE_KEYS`: comma-separated base64 AES-256 keys, newest first."""
    try:
        keys = [
            base64.b64decode(part.strip(), validate=True)
            for part in text.split(",")
            if part.strip()
        ]
        return Keyring(keys)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            "WEDSYNC_PERF_CACHE_KEYS", f"expected comma-separated base64 32-byte keys ({exc})"
        ) from None


def build_cache(
    settings: PerfSettings,
    *,
    redis: Any = None,
    policy: CachePolicy | None = None,
    breaker: CircuitBreaker | None = None,
) -> Cache:
    """Redis backend + coherent L1 when `redis` is given, else the in-process backend.

    A shared backend needs `WEDSYNC_PERF_CACHE_SECRET` (every process must name keys
    alike); the in-process one makes up its own. `breaker`: the one every user of this
    Redis shares (`RedisGuard.breaker`); unset, the cache has its own.
    """
    secret_value = settings.cache_secret.get_secret_value() if settings.cache_secret else None
    if redis is not None and not secret_value:
        raise ConfigError(
            "WEDSYNC_PERF_CACHE_SECRET", "required with a shared (Redis) cache: 16+ characters"
        )
    secret = (secret_value or secrets.token_hex(16)).encode()
    keyring = parse_keyring(settings.cache_keys.get_secret_value()) if settings.cache_keys else None
    local = LocalTier(max_entries=settings.cache_local_entries)
    keys = RedisKeys(settings.redis_prefix)
    if redis is None:
        return Cache(
            MemoryBackend(), secret=secret, keyring=keyring, policy=policy, local=local, keys=keys
        )
    return Cache(
        RedisBackend(redis),
        secret=secret,
        keyring=keyring,
        policy=policy,
        local=local,
        bus=InvalidationBus(redis, local, keys),
        timeout_s=settings.cache_timeout_ms / 1000,
        breaker=breaker,
        keys=keys,
    )
