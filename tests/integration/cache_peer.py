"""A second process holding a two-tier cache, driven by the two-process test over
Redis lists: commands on `{ns}:cmd`, answers on `{ns}:reply`."""

from __future__ import annotations

import asyncio
import sys

import orjson
import redis.asyncio as redis_asyncio

from wedsync_perf.caching import Cache, InvalidationBus, LocalTier, RedisBackend
from wedsync_perf.keys import RedisKeys


async def main(redis_url: str, namespace: str) -> None:
    client = redis_asyncio.Redis.from_url(redis_url)
    control = redis_asyncio.Redis.from_url(redis_url)
    local = LocalTier()
    cache = Cache(
        RedisBackend(client),
        secret=b"test-secret-0123456789",
        keys=RedisKeys(namespace),
        local=local,
        bus=InvalidationBus(client, local, RedisKeys(namespace)),
    )
    await cache.start()
    assert cache.bus is not None
    await asyncio.wait_for(cache.bus.connected.wait(), 10)
    await control.rpush(f"{namespace}:reply", b'"ready"')
    while True:
        _, raw = await control.blpop([f"{namespace}:cmd"])
        command = orjson.loads(raw)
        if command["op"] == "quit":
            break
        if command["op"] == "get":
            answer = await cache.get("k", tenant=1)
        elif command["op"] == "set":
            await cache.set("k", command["value"], tenant=1, tags=["w"])
            answer = "ok"
        else:
            answer = {"local_hits": cache.stats.of("default").hits_local,
                      "connected": cache.bus.connected.is_set()}  # fmt: skip
        await control.rpush(f"{namespace}:reply", orjson.dumps(answer))
    await cache.stop()
    await client.aclose()
    await control.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
