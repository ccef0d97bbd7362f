"""Hostile cache entries on a real Redis: whoever can write to it must not control what
is served. Each forged, replayed, moved, cut, wrong-shape or oversized entry is a miss:
the right data is served (loaded afresh), the rejection is counted by reason, and the
bad entry is gone. Every test works under a key prefix of its own."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import BaseModel

from wedsync_perf.caching import (
    Cache,
    CachePolicy,
    DataPolicy,
    Keyring,
    MemoryBackend,
    RedisBackend,
    StoreOutcome,
)
from wedsync_perf.caching.crypto import MAC_BYTES
from wedsync_perf.caching.envelope import header, parse
from wedsync_perf.caching.metrics import CacheCollector
from wedsync_perf.caching.query import QueryCache
from wedsync_perf.errors import InvalidValue
from wedsync_perf.keys import RedisKeys

pytestmark = pytest.mark.integration
SECRET = b"integrity-secret-0123456789"
POLICY = CachePolicy(
    {
        "default": DataPolicy(60),
        "timeline": DataPolicy(600, early_beta=0),
        "contacts": DataPolicy(600, sensitive=True, early_beta=0),
        "small": DataPolicy(600, early_beta=0, max_bytes=4096),
    }
)
TRUE_TIMELINE = {"ceremony": "14:00", "venue": "Kew Gardens"}
FORGED_TIMELINE = {"ceremony": "06:00", "venue": "Somewhere else"}


_CACHES: list[Cache] = []


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(redis_url)
    yield client
    while _CACHES:  # background work ends before its client closes
        await _CACHES.pop().stop()
    await client.aclose()


def make_cache(redis: redis_asyncio.Redis, *, keyring: Keyring | None = None) -> Cache:
    cache = Cache(
        RedisBackend(redis),
        secret=SECRET,
        keyring=keyring,
        policy=POLICY,
        keys=RedisKeys("t" + uuid.uuid4().hex[:10]),  # this test's keys only
        timeout_s=5.0,  # a busy machine must not turn a rejection into a timed-out miss
    )
    _CACHES.append(cache)
    return cache


class Loader:
    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        return self.value


async def read(cache: Cache, loader: Loader, data_class: str, *, key: str = "timeline:7",
               tenant: int = 1, tags: tuple[str, ...] = ()) -> Any:  # fmt: skip
    return await cache.get_or_set(key, loader, tenant=tenant, data_class=data_class, tags=tags)


def rejected(cache: Cache, data_class: str) -> dict[str, int]:
    return cache.stats.of(data_class).rejected


async def test_a_forged_plain_entry_is_never_served(redis: redis_asyncio.Redis) -> None:
    cache = make_cache(redis)
    loader = Loader(TRUE_TIMELINE)
    assert await read(cache, loader, "timeline") == TRUE_TIMELINE
    entry = cache.names.entry(1, "timeline:7")
    genuine = await redis.get(entry)
    assert genuine is not None
    envelope = parse(genuine)
    mac = envelope.body[:MAC_BYTES]
    forgeries = [
        # the genuine header and MAC over a different body
        envelope.header + mac + b'{"ceremony":"06:00","venue":"Somewhere else"}',
        # a fresh header with a far expiry and a made-up MAC
        header([], "timeline", 9_999_999_999_999, 0, 0) + b"\0" * 32 + b'{"ceremony":"06:00"}',
    ]
    for number, forged in enumerate(forgeries, 1):
        await redis.set(entry, forged)
        assert await read(cache, loader, "timeline") == TRUE_TIMELINE
        assert rejected(cache, "timeline") == {"forged": number}
        assert await redis.get(entry) != forged  # deleted, then stored afresh
    assert loader.calls == 3
    # Without a loader the forgery is a plain miss, and deleted.
    await redis.set(entry, forgeries[0])
    assert await cache.get("timeline:7", tenant=1, data_class="timeline") is None
    assert await redis.exists(entry) == 0


async def test_a_replayed_sealed_entry_with_a_rewritten_header_is_rejected(
    redis: redis_asyncio.Redis,
) -> None:
    cache = make_cache(redis, keyring=Keyring([Keyring.generate()]))
    old_list = {"vendors": [{"name": "Florist", "phone": "+44 7700 900001"}]}
    new_list = {"vendors": [{"name": "Florist", "phone": "+44 7700 900002"}]}
    tags = ("vendors:5",)
    assert await read(cache, Loader(old_list), "contacts", key="vendors:5", tags=tags) == old_list
    entry = cache.names.entry(1, "vendors:5")
    old_blob = await redis.get(entry)
    assert old_blob is not None
    assert b"900001" not in old_blob
    await cache.invalidate("vendors:5", tenant=1)
    current = Loader(new_list)
    assert await read(cache, current, "contacts", key="vendors:5", tags=tags) == new_list
    # The old entry as it was: its tag version is out of date, so Redis answers a miss.
    await redis.set(entry, old_blob)
    assert await read(cache, current, "contacts", key="vendors:5", tags=tags) == new_list
    # The old body under a rewritten header (current tag versions, 30 days' expiry).
    old = parse(old_blob)
    versions = await cache.backend.tag_versions([t for t, _ in old.tags])
    expiry = int((time.time() + 30 * 86_400) * 1000)
    rewritten = header(list(zip([t for t, _ in old.tags], versions, strict=True)), "contacts",
                       expiry, old.delta_ms, old.flags)  # fmt: skip
    await redis.set(entry, rewritten + old.body)
    assert await read(cache, current, "contacts", key="vendors:5", tags=tags) == new_list
    assert rejected(cache, "contacts") == {"forged": 1}
    assert current.calls == 3
    stored = await redis.get(entry)
    assert stored is not None
    assert not stored.endswith(old.body)


@pytest.mark.parametrize("sealed", [False, True])
async def test_an_entry_moved_to_another_key_or_tenant_is_rejected(
    redis: redis_asyncio.Redis, sealed: bool
) -> None:
    data_class = "contacts" if sealed else "timeline"
    cache = make_cache(redis, keyring=Keyring([Keyring.generate()]) if sealed else None)
    mine, theirs = Loader(TRUE_TIMELINE), Loader(FORGED_TIMELINE)
    assert await read(cache, theirs, data_class, tenant=2) == FORGED_TIMELINE
    blob = await redis.get(cache.names.entry(2, "timeline:7"))
    assert blob is not None
    for tenant, key in ((1, "timeline:7"), (2, "timeline:8")):  # another tenant, another key
        target = cache.names.entry(tenant, key)
        await redis.set(target, blob)
        assert await read(cache, mine, data_class, key=key, tenant=tenant) == TRUE_TIMELINE
        assert await redis.get(target) != blob
    assert rejected(cache, data_class) == {"forged": 2}


async def test_a_cut_entry_is_rejected(redis: redis_asyncio.Redis) -> None:
    cache = make_cache(redis)
    loader = Loader(TRUE_TIMELINE)
    await read(cache, loader, "timeline")
    entry = cache.names.entry(1, "timeline:7")
    blob = await redis.get(entry)
    assert blob is not None
    head = len(parse(blob).header)
    for cut in (blob[:-1], blob[: head + MAC_BYTES], blob[: head + 5], blob[: head - 3]):
        await redis.set(entry, cut)
        assert await read(cache, loader, "timeline") == TRUE_TIMELINE
    assert rejected(cache, "timeline") == {"forged": 3, "malformed": 1}


async def test_an_entry_written_for_another_data_class_is_rejected(
    redis: redis_asyncio.Redis,
) -> None:
    cache = make_cache(redis)
    await cache.set("timeline:7", FORGED_TIMELINE, tenant=1, data_class="default")
    assert await read(cache, Loader(TRUE_TIMELINE), "timeline") == TRUE_TIMELINE
    assert rejected(cache, "timeline") == {"data_class": 1}


class Timeline(BaseModel):
    ceremony: str
    venue: str


async def test_an_authentic_entry_of_the_wrong_shape_is_a_miss_not_an_error(
    redis: redis_asyncio.Redis,
) -> None:
    cache = make_cache(redis)
    # Authentic (written through the cache: an older format, a bug) but not a Timeline.
    await cache.set("timeline:7", [1, 2, 3], tenant=1, data_class="timeline")
    loader = Loader(Timeline(**TRUE_TIMELINE))
    value = await cache.get_or_set(
        "timeline:7", loader, tenant=1, data_class="timeline", model=Timeline
    )
    assert value == Timeline(**TRUE_TIMELINE)
    assert rejected(cache, "timeline") == {"shape": 1}
    again = await cache.get("timeline:7", tenant=1, data_class="timeline", model=Timeline)
    assert again == Timeline(**TRUE_TIMELINE)  # the right value was stored afresh
    assert loader.calls == 1


async def test_an_oversized_entry_is_rejected_without_being_read_whole(
    redis: redis_asyncio.Redis,
) -> None:
    cache = make_cache(redis)
    loader = Loader(TRUE_TIMELINE)
    entry = cache.names.entry(1, "timeline:7")
    # 16 MiB under a well-formed header: the backend hands over cap + 1 bytes at most.
    huge = header([], "small", 9_999_999_999_999, 0, 0) + b"x" * (16 * 1024 * 1024)
    await redis.set(entry, huge)
    cut = await cache.backend.get(entry, 4096)
    assert cut is not None
    assert len(cut) == 4097
    assert await read(cache, loader, "small") == TRUE_TIMELINE
    assert rejected(cache, "small") == {"oversized": 1}
    stored = await redis.get(entry)
    assert stored is not None
    assert len(stored) < 4096


async def test_a_value_over_the_cap_is_not_stored_and_its_old_entry_goes(
    redis: redis_asyncio.Redis,
) -> None:
    cache = make_cache(redis)
    assert await cache.set("k", "small", tenant=1, data_class="small") is StoreOutcome.STORED
    outcome = await cache.set("k", "y" * 5000, tenant=1, data_class="small")
    assert outcome is StoreOutcome.OVERSIZED
    assert await redis.exists(cache.names.entry(1, "k")) == 0  # not the older value
    assert await cache.get("k", tenant=1, data_class="small") is None
    assert cache.stats.of("small").not_stored == {"oversized": 1}


async def test_a_sensitive_class_stored_unsealed_is_rejected(redis: redis_asyncio.Redis) -> None:
    keyring = Keyring([Keyring.generate()])
    cache = make_cache(redis, keyring=keyring)
    # Written by a cache whose policy did not mark the class sensitive, same secret.
    lax = Cache(RedisBackend(redis), secret=SECRET, keys=cache.names.keys,
                policy=CachePolicy({"default": DataPolicy(60), "contacts": DataPolicy(60)}))  # fmt: skip
    await lax.set("vendors:5", FORGED_TIMELINE, tenant=1, data_class="contacts")
    loader = Loader(TRUE_TIMELINE)
    assert await read(cache, loader, "contacts", key="vendors:5") == TRUE_TIMELINE
    assert rejected(cache, "contacts") == {"unsealed": 1}


async def test_rejections_are_exported_by_reason(redis: redis_asyncio.Redis) -> None:
    cache = make_cache(redis)
    await read(cache, Loader(TRUE_TIMELINE), "timeline")
    await redis.set(cache.names.entry(1, "timeline:7"), b"\n\nnot an entry")
    await read(cache, Loader(TRUE_TIMELINE), "timeline")
    registry = CollectorRegistry()
    registry.register(CacheCollector(cache))
    text = generate_latest(registry).decode()
    assert 'wedsync_cache_rejected_total{data_class="timeline",reason="malformed"} 1.0' in text
    assert 'wedsync_cache_corrupt_entries_total{data_class="timeline"} 1.0' in text


async def test_an_unknown_data_class_is_an_error_at_first_use() -> None:
    cache = Cache(MemoryBackend(), secret=SECRET, policy=POLICY)
    with pytest.raises(InvalidValue, match="data_class"):
        await cache.set("k", "contact@example.com", tenant=1, data_class="contact")
    with pytest.raises(InvalidValue, match="data_class"):
        await cache.get("k", tenant=1, data_class="contact")
    with pytest.raises(InvalidValue, match="data_class"):
        await cache.get_or_set("k", Loader(1), tenant=1, data_class="contact")
    with pytest.raises(InvalidValue, match="data_class"):
        QueryCache(cache, data_class="search")  # when configured
    assert cache.stats.by_class == {}
