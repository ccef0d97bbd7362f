"""The in-process tier (L1) and the bus that keeps every process's L1 coherent.

Rules that bound staleness (each one closes a hole cashews' two-tier mode has):

1. The L1 is used only while the invalidation subscriber is connected; on connect,
   disconnect and every error it is flushed. A lost connection can therefore never
   leave an old value being served.
2. A process's own `set`/`delete`/`invalidate` update its L1 before they return, so
   the writer never reads its own stale value.
3. An L1 fill carries the invalidation sequence number read *before* the Redis read;
   if any invalidation arrived in between, the fill is dropped — an old value fetched
   just before an invalidation cannot be inserted just after it.
4. Every L1 entry also has a short maximum age (`max_age_s`), a last-resort bound.

The bound for another process is the pub/sub delivery time (measured in
`make bench-cache`) and never more than `max_age_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import orjson

from wedsync_perf.background import BackgroundLoop
from wedsync_perf.caching.redis_errors import unavailable
from wedsync_perf.errors import BackendUnavailable
from wedsync_perf.keys import RedisKeys

__all__ = ["InvalidationBus", "LocalTier"]

_log = logging.getLogger(__name__)


class LocalTier:
    """A bounded LRU of decoded values with a tag index.

    Values are shared between readers, not copied: treat cached values as read-only.
    """

    def __init__(self, max_entries: int = 10_000, max_age_s: float = 30.0) -> None:
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self._data: OrderedDict[str, tuple[Any, float, tuple[str, ...]]] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        self.sequence = 0  # bumped by every invalidation this process applies
        self.enabled = False

    def get(self, key: str) -> tuple[bool, Any]:
        item = self._data.get(key)
        if item is None or not self.enabled:
            return False, None
        value, expires, _ = item
        if expires < time.monotonic():
            self._drop(key)
            return False, None
        return True, value

    def put(
        self, key: str, value: Any, ttl_s: float, tags: tuple[str, ...], seen_sequence: int
    ) -> None:
        """Fill, unless an invalidation was applied since `seen_sequence` was read."""
        if not self.enabled or seen_sequence != self.sequence:
            return
        self._drop(key)
        self._data[key] = (value, time.monotonic() + min(ttl_s, self.max_age_s), tags)
        for tag in tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while len(self._data) > self.max_entries:
            self._drop(next(iter(self._data)))

    def _drop(self, key: str) -> None:
        item = self._data.pop(key, None)
        if item is None:
            return
        for tag in item[2]:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]

    def drop_keys(self, keys: Iterable[str]) -> None:
        self.sequence += 1
        for key in keys:
            self._drop(key)

    def drop_tags(self, tags: Iterable[str]) -> None:
        self.sequence += 1
        for tag in tags:
            for key in list(self._by_tag.get(tag, ())):
                self._drop(key)

    def clear(self) -> None:
        self.sequence += 1
        self._data.clear()
        self._by_tag.clear()

    def __len__(self) -> int:
        return len(self._data)


class InvalidationBus:
    """Redis pub/sub carrying "these keys / tags changed" between processes."""

    def __init__(self, redis: Any, local: LocalTier, keys: RedisKeys) -> None:
        self.redis = redis
        self.local = local
        self.channel = keys.invalidation_channel()
        self.instance = uuid.uuid4().hex[:12]
        self._loop = BackgroundLoop(self._listen, "wedsync-perf-cache-bus")
        self.connected = asyncio.Event()
        self.reconnects = 0

    async def publish(self, keys: Iterable[str] = (), tags: Iterable[str] = ()) -> None:
        """Raises `BackendUnavailable` when Redis fails."""
        message = orjson.dumps({"from": self.instance, "keys": list(keys), "tags": list(tags)})
        with unavailable("publish"):
            await self.redis.publish(self.channel, message)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        self._offline()

    def _offline(self) -> None:
        self.local.enabled = False
        self.local.clear()
        self.connected.clear()

    async def _listen(self) -> None:
        delay = 0.05
        while True:
            pubsub = self.redis.pubsub()
            try:
                with unavailable("subscribe"):
                    await pubsub.subscribe(self.channel)
                # Subscribed: from here on no invalidation can be missed, so an empty L1
                # may start filling.
                self.local.clear()
                self.local.enabled = True
                self.connected.set()
                delay = 0.05
                with unavailable("pubsub read"):
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        self._apply(message.get("data"))
            except BackendUnavailable as exc:  # connection lost: stop serving L1 until back
                _log.warning("cache invalidation bus disconnected: %s", exc)
            except Exception:  # not the connection: a bug, logged in full; retried the same
                _log.exception("cache invalidation bus failed")
            finally:
                self._offline()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            self.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _apply(self, data: Any) -> None:
        try:
            message = orjson.loads(data)
        except (orjson.JSONDecodeError, TypeError):
            self.local.clear()  # unreadable: assume the worst
            return
        if message.get("from") == self.instance:
            return
        keys, tags = message.get("keys") or [], message.get("tags") or []
        if keys:
            self.local.drop_keys(keys)
        if tags:
            self.local.drop_tags(tags)
