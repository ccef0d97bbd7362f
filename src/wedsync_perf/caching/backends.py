"""Cache storage behind one small protocol: in-process memory and Redis.

Both keep tags as version counters. An entry records the version of each of its tags
when it was written; a read answers "miss" if any tag has moved on since. So
invalidating a tag is one INCR, whatever number of keys carries it, and a read that
starts after `bump()` returned can never see an entry written before it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

from wedsync_perf.caching.envelope import parse
from wedsync_perf.caching.redis_errors import unavailable
from wedsync_perf.errors import CorruptData, InvalidValue

__all__ = ["Backend", "MemoryBackend", "RedisBackend"]


class Backend(Protocol):
    """Storage for `Cache`. An implementation that talks to a server raises
    `BackendUnavailable` when it fails or does not answer, never its driver's errors:
    the cache skips the backend on that, and lets anything else propagate."""

    async def get(self, key: str, max_bytes: int | None = None) -> bytes | None:
        """The stored blob, or None if absent, expired, or any of its tags moved on.
        A blob longer than `max_bytes` is cut to `max_bytes + 1` bytes, so that reading
        an oversized entry costs no more than the cap and the caller still sees it is
        oversized."""
        ...

    async def set(self, key: str, blob: bytes, ttl_s: float) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def tag_versions(self, tag_keys: Sequence[str]) -> list[int]: ...

    async def bump(self, tag_keys: Sequence[str], keep_s: float) -> None:
        """Invalidate: advance each tag's version, keeping it at least `keep_s`."""
        ...

    async def acquire(self, lock_key: str, ttl_s: float) -> str | None:
        """A token if the lock was free (it expires by itself after `ttl_s`)."""
        ...

    async def release(self, lock_key: str, token: str) -> None: ...


def _tags_current(blob: bytes, versions: dict[str, int]) -> bool:
    try:
        envelope = parse(blob)
    except CorruptData:
        return True  # malformed: let the cache count it as corrupt, not as stale
    return all(versions.get(tag, 0) == version for tag, version in envelope.tags)


class MemoryBackend:
    """In-process LRU bounded by entry count and bytes, with TTLs: the embedded
    default, and the same code path as Redis for tests."""

    def __init__(self, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_entries < 1:
            raise InvalidValue("max_entries", max_entries, "at least 1 entry")
        if max_bytes < 1:
            raise InvalidValue("max_bytes", max_bytes, "at least 1 byte")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._tags: dict[str, tuple[int, float]] = {}
        self._locks: dict[str, tuple[str, float]] = {}

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str, max_bytes: int | None = None) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        blob, expires = item
        now = time.monotonic()
        if expires <= now:
            self._drop(key)
            return None
        self._data.move_to_end(key)
        versions = {t: v for t, (v, keep) in self._tags.items() if keep > now}
        if not _tags_current(blob, versions):
            return None
        return blob if max_bytes is None else blob[: max_bytes + 1]

    async def set(self, key: str, blob: bytes, ttl_s: float) -> None:
        if len(blob) > self.max_bytes:
            return  # larger than the whole cache: not worth evicting everything
        self._drop(key)
        self._data[key] = (blob, time.monotonic() + ttl_s)
        self._bytes += len(blob)
        while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
            oldest = next(iter(self._data))
            self._drop(oldest)

    def _drop(self, key: str) -> None:
        item = self._data.pop(key, None)
        if item is not None:
            self._bytes -= len(item[0])

    async def delete(self, key: str) -> None:
        self._drop(key)

    async def tag_versions(self, tag_keys: Sequence[str]) -> list[int]:
        now = time.monotonic()
        return [
            v if keep > now else 0 for v, keep in (self._tags.get(t, (0, 0.0)) for t in tag_keys)
        ]

    async def bump(self, tag_keys: Sequence[str], keep_s: float) -> None:
        now = time.monotonic()
        for tag in tag_keys:
            version, keep = self._tags.get(tag, (0, 0.0))
            self._tags[tag] = ((version if keep > now else 0) + 1, max(keep, now + keep_s))

    async def acquire(self, lock_key: str, ttl_s: float) -> str | None:
        now = time.monotonic()
        held = self._locks.get(lock_key)
        if held is not None and held[1] > now:
            return None
        token = secrets.token_hex(8)
        self._locks[lock_key] = (token, now + ttl_s)
        return token

    async def release(self, lock_key: str, token: str) -> None:
        held = self._locks.get(lock_key)
        if held is not None and held[0] == token:
            del self._locks[lock_key]


# KEYS[1] = entry; ARGV[1] = the most bytes to return (-1: all; longer blobs are cut to
# ARGV[1] + 1). Tag keys are read from the entry's first line; they share the entry's
# hash tag (one tenant scope), so on Redis Cluster they live in the same slot. The tag
# line is not authenticated here: the client verifies the whole entry afterwards.
_GET_SCRIPT = """
local blob = redis.call('GET', KEYS[1])
if not blob then return false end
local nl = string.find(blob, '\\n', 1, true)
if nl then
  local head = string.sub(blob, 1, nl - 1)
  for tag, version in string.gmatch(head, '(%S+) (%d+)') do
    local current = redis.call('GET', tag) or '0'
    if current ~= version then return false end
  end
end
local cap = tonumber(ARGV[1])
if cap >= 0 and #blob > cap then return string.sub(blob, 1, cap + 1) end
return blob
"""
# KEYS = tag keys; ARGV[1] = seconds to keep each version (at least the longest entry TTL).
_BUMP_SCRIPT = """
for i, tag in ipairs(KEYS) do
  redis.call('INCR', tag)
  local ttl = redis.call('TTL', tag)
  if ttl < tonumber(ARGV[1]) then redis.call('EXPIRE', tag, ARGV[1]) end
end
return #KEYS
"""
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisBackend:
    """Redis via redis-py asyncio. One round trip per read (a Lua script checks the tag
    versions server-side), one per write, one per invalidation.

    Every method raises `BackendUnavailable` (the driver's error as its cause) when
    Redis fails or cannot be reached."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._get = redis.register_script(_GET_SCRIPT)
        self._bump = redis.register_script(_BUMP_SCRIPT)
        self._release = redis.register_script(_RELEASE_SCRIPT)

    async def get(self, key: str, max_bytes: int | None = None) -> bytes | None:
        with unavailable("get"):
            blob = await self._get(keys=[key], args=[-1 if max_bytes is None else max_bytes])
        return bytes(blob) if blob else None

    async def set(self, key: str, blob: bytes, ttl_s: float) -> None:
        with unavailable("set"):
            await self.redis.set(key, blob, px=max(1, int(ttl_s * 1000)))

    async def delete(self, key: str) -> None:
        with unavailable("delete"):
            await self.redis.delete(key)

    async def tag_versions(self, tag_keys: Sequence[str]) -> list[int]:
        if not tag_keys:
            return []
        with unavailable("mget"):
            values = await self.redis.mget(list(tag_keys))
        return [int(v) if v is not None else 0 for v in values]

    async def bump(self, tag_keys: Sequence[str], keep_s: float) -> None:
        # One script per hash-tag scope: a script's keys must share a Cluster slot.
        by_scope: dict[str, list[str]] = {}
        for tag in tag_keys:
            by_scope.setdefault(tag.split("}", 1)[0], []).append(tag)
        with unavailable("bump"):
            await asyncio.gather(
                *(self._bump(keys=keys, args=[max(1, int(keep_s))]) for keys in by_scope.values())
            )

    async def acquire(self, lock_key: str, ttl_s: float) -> str | None:
        token = secrets.token_hex(8)
        with unavailable("lock"):
            ok = await self.redis.set(lock_key, token, nx=True, px=max(1, int(ttl_s * 1000)))
        return token if ok else None

    async def release(self, lock_key: str, token: str) -> None:
        with unavailable("unlock"):
            await self._release(keys=[lock_key], args=[token])
