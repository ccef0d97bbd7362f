"""The cache on both backends (in-process and a real Redis): tags, tenants, sealing,
corruption, stampedes, stale-while-revalidate, and Redis trouble."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis_asyncio
from pydantic import BaseModel

from wedsync_perf.breaker import ConsecutiveFailures
from wedsync_perf.caching import (
    BreakerState,
    Cache,
    CachePolicy,
    CircuitBreaker,
    DataPolicy,
    InvalidationBus,
    Keyring,
    LocalTier,
    MemoryBackend,
    RedisBackend,
)
from wedsync_perf.keys import RedisKeys
from wedsync_perf.testing import RedisProcess, free_port

pytestmark = pytest.mark.integration
SECRET = b"test-secret-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


_CACHES: list[Cache] = []


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    """Overrides conftest's: caches' background work must end before the client closes."""
    client = redis_asyncio.Redis.from_url(redis_url)
    yield client
    await _stop_caches()
    await client.aclose()


async def _stop_caches() -> None:
    """Background refreshes must end before their Redis client closes."""
    while _CACHES:
        await _CACHES.pop().stop()


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[object]:
    if request.param == "memory":
        yield MemoryBackend()
        await _stop_caches()
        return
    client = redis_asyncio.Redis.from_url(redis_url)
    yield RedisBackend(client)
    await _stop_caches()
    await client.aclose()


def make_cache(backend: object, **kwargs: object) -> Cache:
    # A fresh prefix per cache keeps tests apart on the shared Redis.
    keys = kwargs.pop("keys", None) or RedisKeys("t" + uuid.uuid4().hex[:10])
    cache = Cache(backend, secret=SECRET, keys=keys, **kwargs)  # type: ignore[arg-type]
    _CACHES.append(cache)
    return cache


class Supplier(BaseModel):
    id: int
    name: str


async def test_round_trip_values_and_models(backend: object) -> None:
    cache = make_cache(backend)
    await cache.set("plain", {"a": [1, 2.5, "x", None]}, tenant=1)
    assert await cache.get("plain", tenant=1) == {"a": [1, 2.5, "x", None]}
    await cache.set("model", Supplier(id=4, name="Oak Florist"), tenant=1)
    assert await cache.get("model", tenant=1, model=Supplier) == Supplier(id=4, name="Oak Florist")
    await cache.delete("plain", tenant=1)
    assert await cache.get("plain", tenant=1, default="gone") == "gone"


async def test_values_must_be_json(backend: object) -> None:
    cache = make_cache(backend)
    with pytest.raises(TypeError, match="JSON"):
        await cache.set("k", {1, 2}, tenant=1)


async def test_tenants_never_share_entries(backend: object) -> None:
    cache = make_cache(backend)
    await cache.set("wedding:1", "tenant one's", tenant=1)
    assert await cache.get("wedding:1", tenant=2) is None
    await cache.set("wedding:1", "tenant two's", tenant=2)
    assert await cache.get("wedding:1", tenant=1) == "tenant one's"
    await cache.invalidate("wedding:1", tenant=2)  # a tag of tenant 2 only
    assert await cache.get("wedding:1", tenant=1) == "tenant one's"


async def test_tag_invalidation_covers_every_key(backend: object) -> None:
    cache = make_cache(backend)
    for i in range(2000):
        await cache.set(f"item:{i}", i, tenant=7, tags=["venue:9", f"item:{i}"])
    await cache.set("other", "kept", tenant=7, tags=["venue:10"])
    await cache.invalidate("venue:9", tenant=7)
    assert [await cache.get(f"item:{i}", tenant=7) for i in range(0, 2000, 97)] == [None] * 21
    assert await cache.get("other", tenant=7) == "kept"
    # New writes after the invalidation are valid again.
    await cache.set("item:1", "fresh", tenant=7, tags=["venue:9"])
    assert await cache.get("item:1", tenant=7) == "fresh"


async def test_load_that_races_an_invalidation_is_never_served(backend: object) -> None:
    cache = make_cache(backend)

    async def loader() -> str:
        # The data changes (and is invalidated) while we are still loading the old copy.
        await cache.invalidate("wedding:3", tenant=1)
        return "old copy"

    assert await cache.get_or_set("t:3", loader, tenant=1, tags=["wedding:3"]) == "old copy"
    assert await cache.get("t:3", tenant=1) is None  # stored, but already outdated


async def test_stampede_loads_once(backend: object) -> None:
    cache = make_cache(backend)
    calls = 0

    async def loader() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)  # the loader's own work, not a synchronisation
        return {"items": 30}

    results = await asyncio.gather(
        *(cache.get_or_set("timeline:1", loader, tenant=1) for _ in range(200))
    )
    assert calls == 1
    assert all(r == {"items": 30} for r in results)


async def test_stampede_across_caches_loads_once(redis_url: str) -> None:
    namespace = "t" + uuid.uuid4().hex[:10]
    clients = [redis_asyncio.Redis.from_url(redis_url) for _ in range(3)]
    caches = [make_cache(RedisBackend(c), keys=RedisKeys(namespace)) for c in clients]
    calls = 0

    async def loader() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "v"

    results = await asyncio.gather(
        *(c.get_or_set("hot", loader, tenant=1) for c in caches for _ in range(70))
    )
    assert calls == 1
    assert set(results) == {"v"}
    await _stop_caches()
    for client in clients:
        await client.aclose()


async def test_loader_errors_reach_every_waiter_and_are_not_cached(backend: object) -> None:
    cache = make_cache(backend)

    async def failing() -> str:
        await asyncio.sleep(0.01)
        raise RuntimeError("database down")

    outcomes = await asyncio.gather(
        *(cache.get_or_set("k", failing, tenant=1) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes)

    async def working() -> str:
        return "ok"

    assert await cache.get_or_set("k", working, tenant=1) == "ok"


async def test_sensitive_values_are_sealed_and_keys_rotate(redis: redis_asyncio.Redis) -> None:
    namespace = "t" + uuid.uuid4().hex[:10]
    old, new = Keyring.generate(), Keyring.generate()
    policy = CachePolicy({"default": DataPolicy(60), "contacts": DataPolicy(60, sensitive=True)})
    writer = make_cache(
        RedisBackend(redis), keyring=Keyring([old]), policy=policy, keys=RedisKeys(namespace)
    )
    contact = {"email": "bride@example.com", "phone": "+44 7700 900123"}
    await writer.set("vendors:5", contact, tenant=3, data_class="contacts")
    raw = [await redis.get(k) async for k in redis.scan_iter(match=f"{namespace}:*")]
    assert raw
    assert not any(b"bride@example.com" in (v or b"") for v in raw)
    keys = [k async for k in redis.scan_iter(match=f"{namespace}:*")]
    assert not any(b"vendors" in k or b"bride" in k for k in keys)  # HMAC'd key names
    rotated = make_cache(
        RedisBackend(redis), keyring=Keyring([new, old]), policy=policy, keys=RedisKeys(namespace)
    )
    assert await rotated.get("vendors:5", tenant=3, data_class="contacts") == contact
    retired = make_cache(
        RedisBackend(redis), keyring=Keyring([new]), policy=policy, keys=RedisKeys(namespace)
    )
    assert await retired.get("vendors:5", tenant=3, data_class="contacts") is None
    assert retired.stats.of("contacts").corrupt == 1


async def test_sensitive_class_without_keyring_is_never_stored(backend: object) -> None:
    policy = CachePolicy({"default": DataPolicy(60), "contacts": DataPolicy(60, sensitive=True)})
    cache = make_cache(backend, policy=policy)
    calls = 0

    async def loader() -> str:
        nonlocal calls
        calls += 1
        return "secret"

    for _ in range(3):
        await cache.get_or_set("c", loader, tenant=1, data_class="contacts")
    assert calls == 3


async def test_corrupt_entries_are_misses_with_a_counter(redis: redis_asyncio.Redis) -> None:
    cache = make_cache(RedisBackend(redis))
    await cache.set("k", "value", tenant=1)
    entry = cache.names.entry(1, "k")
    for garbage in (b"\xff\xfe not an envelope", b"\n1 0 0\n{not json", b"\n9999999999999 0 1\nxx"):
        await redis.set(entry, garbage)
        assert await cache.get("k", tenant=1) is None
    assert cache.stats.of("default").corrupt == 3


async def test_stale_while_revalidate_serves_old_value_once_refreshing(backend: object) -> None:
    clock = Clock()
    policy = CachePolicy({"default": DataPolicy(ttl_s=10, stale_s=60, early_beta=0)})
    cache = make_cache(backend, policy=policy, clock=clock)
    version = 0
    refreshed = asyncio.Event()

    async def loader() -> int:
        nonlocal version
        version += 1
        if version > 1:
            refreshed.set()
        return version

    assert await cache.get_or_set("k", loader, tenant=1) == 1
    clock.now += 20  # expired 10 s ago: inside the 60 s stale window
    assert await cache.get_or_set("k", loader, tenant=1) == 1  # stale, served at once
    await asyncio.wait_for(refreshed.wait(), 5)
    await _eventually(lambda: cache.get("k", tenant=1), 2)  # the refresh was stored
    assert cache.stats.of("default").stale_served == 1
    clock.now += 100  # far past the stale window: a plain miss
    assert await cache.get_or_set("k", loader, tenant=1) == 3


async def test_early_refresh_happens_before_expiry(backend: object) -> None:
    clock = Clock()
    # With β huge, any positive loader time makes the early-refresh test fire.
    policy = CachePolicy({"default": DataPolicy(ttl_s=60, early_beta=1e9)})
    cache = make_cache(backend, policy=policy, clock=clock)
    calls = 0
    second = asyncio.Event()

    async def loader() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.002)
        if calls == 2:
            second.set()
        return calls

    assert await cache.get_or_set("k", loader, tenant=1) == 1
    assert await cache.get_or_set("k", loader, tenant=1) == 1  # served, refresh scheduled
    await asyncio.wait_for(second.wait(), 5)
    assert cache.stats.of("default").early_refreshes >= 1


async def test_local_tier_with_bus_stays_coherent_between_two_caches(redis_url: str) -> None:
    namespace = "t" + uuid.uuid4().hex[:10]
    caches, clients = [], []
    for _ in range(2):
        client = redis_asyncio.Redis.from_url(redis_url)
        clients.append(client)
        local = LocalTier()
        cache = make_cache(
            RedisBackend(client),
            local=local,
            bus=InvalidationBus(client, local, RedisKeys(namespace)),
            keys=RedisKeys(namespace),
        )
        await cache.start()
        await asyncio.wait_for(cache.bus.connected.wait(), 5)  # type: ignore[union-attr]
        caches.append(cache)
    a, b = caches
    await a.set("k", "v1", tenant=1, tags=["w:1"])
    # B's first reads may skip filling its L1 (A's invalidation can land mid-read: the
    # fill is then refused, by design); it settles into L1 hits within a few reads.
    for _ in range(50):
        assert await b.get("k", tenant=1) == "v1"
        if b.stats.of("default").hits_local:
            break
    assert b.stats.of("default").hits_local >= 1
    await a.set("k", "v2", tenant=1, tags=["w:1"])
    assert await a.get("k", tenant=1) == "v2"  # the writer never reads its own old value
    await _eventually(lambda: b.get("k", tenant=1), "v2")
    await b.invalidate("w:1", tenant=1)
    assert await b.get("k", tenant=1) is None
    await _eventually(lambda: a.get("k", tenant=1), None)
    for cache in caches:
        await cache.stop()
    for client in clients:
        await client.aclose()


async def _eventually(read: object, expected: object, within_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        got = await read()  # type: ignore[operator]
        if got == expected:
            return
        assert asyncio.get_running_loop().time() < deadline, f"still {got!r}, wanted {expected!r}"
        await asyncio.sleep(0.002)


def test_keyring_rejects_bad_keys() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Keyring([b"short"])
    with pytest.raises(ValueError, match="at least one"):
        Keyring([])
    assert len(base64.b64encode(Keyring.generate())) == 44


async def test_redis_outage_falls_through_and_recovers(tmp_path: Path) -> None:
    server = RedisProcess(free_port(), tmp_path / "redis")
    server.start()
    client = redis_asyncio.Redis.from_url(
        server.url, socket_connect_timeout=0.2, socket_timeout=0.2
    )
    breaker = CircuitBreaker(ConsecutiveFailures(3), cooldown_s=0.2)
    cache = make_cache(RedisBackend(client), breaker=breaker)
    calls = 0

    async def loader() -> int:
        nonlocal calls
        calls += 1
        return calls

    try:
        assert await cache.get_or_set("k", loader, tenant=1) == 1
        assert await cache.get_or_set("k", loader, tenant=1) == 1  # cached
        server.stop()
        # Redis is gone: every call still answers, from the loader, without raising.
        outage = [await cache.get_or_set("k", loader, tenant=1) for _ in range(10)]
        assert outage == list(range(2, 12))
        await cache.set("x", "skipped", tenant=1)  # a write is skipped, not raised
        await cache.invalidate("t", tenant=1)
        assert breaker.state is BreakerState.OPEN
        server.start()
        # Recovers by itself once the cool-down passes and a probe succeeds.
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            await cache.set("k", "back", tenant=1)
            if await cache.get("k", tenant=1) == "back":
                break
            assert asyncio.get_running_loop().time() < deadline, "cache did not recover"
            await asyncio.sleep(0.05)
        assert breaker.state is BreakerState.CLOSED
    finally:
        await _stop_caches()
        await client.aclose()
        server.stop()


async def test_two_processes_stay_coherent_across_writes_and_a_dropped_connection(
    private_redis: RedisProcess,
) -> None:
    """On a private server: it drops every pub/sub connection, which on a shared Redis
    would cut everyone else's."""
    import subprocess
    import sys

    import orjson

    redis_url = private_redis.url
    namespace = "t" + uuid.uuid4().hex[:10]
    control = redis_asyncio.Redis.from_url(redis_url)
    client = redis_asyncio.Redis.from_url(redis_url)
    peer = subprocess.Popen(  # noqa: ASYNC220 - the other process is the point
        [sys.executable, str(Path(__file__).with_name("cache_peer.py")), redis_url, namespace]
    )

    async def ask(op: str, **args: object) -> object:
        await control.rpush(f"{namespace}:cmd", orjson.dumps({"op": op, **args}))
        reply = await control.blpop([f"{namespace}:reply"], timeout=10)
        assert reply is not None, f"peer did not answer {op}"
        return orjson.loads(reply[1])

    async def peer_reads(expected: str, within_s: float = 1.0) -> None:
        deadline = asyncio.get_running_loop().time() + within_s
        while (got := await ask("get")) != expected:
            assert asyncio.get_running_loop().time() < deadline, f"peer still reads {got!r}"

    try:
        ready = await control.blpop([f"{namespace}:reply"], timeout=20)
        assert ready is not None
        local = LocalTier()
        a = make_cache(
            RedisBackend(client),
            local=local,
            bus=InvalidationBus(client, local, RedisKeys(namespace)),
            keys=RedisKeys(namespace),
        )
        await a.start()
        await asyncio.wait_for(a.bus.connected.wait(), 5)  # type: ignore[union-attr]

        await a.set("k", "v1", tenant=1, tags=["w"])
        for _ in range(20):  # until the peer serves it from its L1
            assert await ask("get") == "v1"
            if (await ask("stats"))["local_hits"]:  # type: ignore[index]
                break
        assert (await ask("stats"))["local_hits"] >= 1  # type: ignore[index]
        await a.set("k", "v2", tenant=1, tags=["w"])
        await peer_reads("v2")
        # Two writers, one right after the other: both converge on the last write.
        await a.set("k", "v3", tenant=1, tags=["w"])
        assert await ask("set", value="v4") == "ok"
        await _eventually(lambda: a.get("k", tenant=1), "v4", within_s=1.0)
        await peer_reads("v4")
        # Drop every pub/sub connection: whatever each process held must not outlive it.
        await control.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await a.set("k", "v5", tenant=1, tags=["w"])
        await peer_reads("v5")
        await _eventually(lambda: a.get("k", tenant=1), "v5", within_s=1.0)
        # Invalidation by tag from the peer's side of the world, after reconnecting.
        await asyncio.wait_for(a.bus.connected.wait(), 5)  # type: ignore[union-attr]
        await a.invalidate("w", tenant=1)
        await peer_reads(None)  # type: ignore[arg-type]
        await control.rpush(f"{namespace}:cmd", orjson.dumps({"op": "quit"}))
        assert peer.wait(timeout=10) == 0
    finally:
        if peer.poll() is None:
            peer.kill()
        await _stop_caches()
        await client.aclose()
        await control.aclose()


async def test_decorator_caches_per_tenant_and_invalidates_by_tag(backend: object) -> None:
    cache = make_cache(backend)
    calls: list[tuple[int, int]] = []

    @cache.cached(
        key=lambda tenant_id, wedding_id: f"timeline:{wedding_id}",
        tenant=lambda tenant_id, wedding_id: tenant_id,
        tags=lambda tenant_id, wedding_id: [f"wedding:{wedding_id}"],
    )
    async def timeline(tenant_id: int, wedding_id: int) -> dict[str, int]:
        calls.append((tenant_id, wedding_id))
        return {"wedding": wedding_id, "tenant": tenant_id}

    assert await timeline(1, 5) == {"wedding": 5, "tenant": 1}
    assert await timeline(1, 5) == {"wedding": 5, "tenant": 1}
    assert await timeline(2, 5) == {"wedding": 5, "tenant": 2}  # another tenant: its own
    await cache.invalidate("wedding:5", tenant=1)
    await timeline(1, 5)
    assert calls == [(1, 5), (2, 5), (1, 5)]
