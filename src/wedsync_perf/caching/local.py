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
5. "Connected" means *heard from*: the subscriber PINGs through its subscription every
   `heartbeat_s` and counts as disconnected when nothing (message or PONG) arrived for
   `2 × heartbeat_s`. A hung Redis (SIGSTOP) keeps the socket open and says nothing;
   without this the L1 would go on serving what other processes can no longer
   invalidate. The subscription's connection never retries by itself
   (`subscriber_client`): a silent resubscribe would hide a gap.

The bound for another process is the pub/sub delivery time (measured in
`make bench-cache`) and never more than `max_age_s`. While the bus is down the L1 is
off and empty; an invalidation this process could not hear is served stale here at
most `2 × heartbeat_s` (the time to notice), and never more than `max_age_s`.
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
from redis.asyncio import Redis

from wedsync_perf.background import BackgroundLoop
from wedsync_perf.caching.redis_errors import unavailable
from wedsync_perf.errors import BackendUnavailable, InvalidValue
from wedsync_perf.keys import RedisKeys
from wedsync_perf.redis_client import subscriber_client

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

    def __init__(
        self, redis: Any, local: LocalTier, keys: RedisKeys, *, heartbeat_s: float = 1.0
    ) -> None:
        """`redis` publishes; the subscription gets a connection of its own
        (`subscriber_client(redis)`) from `start()` to `stop()`."""
        if heartbeat_s <= 0:
            raise InvalidValue("heartbeat_s", heartbeat_s, "a positive number of seconds")
        self.redis = redis
        self.local = local
        self.channel = keys.invalidation_channel()
        self.instance = uuid.uuid4().hex[:12]
        self.heartbeat_s = heartbeat_s
        self._subscriber: Redis | None = None
        self._loop = BackgroundLoop(self._listen, "wedsync-perf-cache-bus")
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._heard = 0.0  # when the subscription last delivered anything (monotonic)
        self._stopping = False

    async def publish(self, keys: Iterable[str] = (), tags: Iterable[str] = ()) -> None:
        """Raises `BackendUnavailable` when Redis fails."""
        message = orjson.dumps({"from": self.instance, "keys": list(keys), "tags": list(tags)})
        with unavailable("publish"):
            await self.redis.publish(self.channel, message)

    def start(self) -> None:
        if self._subscriber is None:
            self._subscriber = subscriber_client(self.redis)
        self._loop.start()

    async def stop(self) -> None:
        # A flag besides the cancellation: one was seen lost inside redis-py (8.1)
        # after a killed subscription, and the loop must end anyway.
        self._stopping = True
        await self._loop.stop()
        self._stopping = False
        self._offline()
        if self._subscriber is not None:
            await self._subscriber.aclose()
            self._subscriber = None

    def _offline(self) -> None:
        self.local.enabled = False
        self.local.clear()
        self.connected.clear()

    async def _listen(self) -> None:
        assert self._subscriber is not None  # set by start()
        delay = 0.05
        while not self._stopping:
            pubsub: Any = self._subscriber.pubsub()  # redis-py's PubSub is untyped
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
                    await self._receive(pubsub)
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

    async def _receive(self, pubsub: Any) -> None:
        """Apply messages until the subscription fails or falls silent (rule 5).

        The read blocks without a timeout of its own, as `listen()` does (redis-py
        drops a reply that completes just as a timed read expires); this loop watches
        it, and PINGs so that a live server always has something to say."""
        self._heard = time.monotonic()
        reader = asyncio.create_task(self._read(pubsub), name="wedsync-perf-cache-bus-read")
        try:
            while not self._stopping:
                done, _ = await asyncio.wait([reader], timeout=self.heartbeat_s)
                if done:
                    reader.result()  # the read failed: raise its error
                silent = time.monotonic() - self._heard
                if silent > 2 * self.heartbeat_s:
                    raise BackendUnavailable(f"redis pubsub silent for {silent:.1f} s")
                await pubsub.ping()
        finally:
            reader.cancel()  # bounded wait, not `await reader`: see stop()
            await asyncio.wait([reader], timeout=self.heartbeat_s)
            if reader.done() and not reader.cancelled():
                reader.exception()  # raised above, or superseded by what is raised

    async def _read(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            self._heard = time.monotonic()
            if message is not None and message.get("type") == "message":
                self._apply(message.get("data"))

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
