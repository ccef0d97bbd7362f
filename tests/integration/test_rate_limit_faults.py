"""The rate limiter when its Redis goes away: no request fails for it, the limit is
still enforced (in-process, at this instance's share), and counting returns to Redis
once it answers again. On a private redis-server the test stops and starts."""

from __future__ import annotations

import pytest
import redis.asyncio as redis_asyncio

from tests.conftest import api_settings, key_for, running
from wedsync_api.app import create_app, services_of
from wedsync_perf.breaker import CircuitBreaker, ConsecutiveFailures
from wedsync_perf.keys import RedisKeys
from wedsync_perf.pipeline import RateLimiter
from wedsync_perf.testing import RedisProcess

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def keys_in(url: str) -> list[bytes]:
    client = redis_asyncio.Redis.from_url(url)
    try:
        return [k async for k in client.scan_iter(match="rlt:*")]
    finally:
        await client.aclose()


async def test_counting_falls_back_in_process_and_returns_to_redis(
    private_redis: RedisProcess,
) -> None:
    clock = Clock()
    breaker = CircuitBreaker(ConsecutiveFailures(2), cooldown_s=1.0, clock=clock)
    client = redis_asyncio.Redis.from_url(private_redis.url)
    limiter = RateLimiter(
        "4/minute", private_redis.url, client, keys=RedisKeys("rlt"), local_share=0.5,
        breaker=breaker,
    )  # fmt: skip
    try:
        assert await limiter.retry_after("k1") is None
        assert await keys_in(private_redis.url)  # counted in Redis
        private_redis.stop()
        answers = [await limiter.retry_after("k2") for _ in range(3)]
        assert answers[:2] == [None, None]  # the local share: half of 4
        assert answers[2] is not None
        assert answers[2] >= 1
        assert breaker.state == "open"
        assert limiter.fallbacks == 3
        private_redis.start()
        clock.now += 1.5  # the breaker's cooldown: its probe goes to Redis again
        assert await limiter.retry_after("k3") is None
        assert breaker.state == "closed"
        assert limiter.fallbacks == 3
        assert await keys_in(private_redis.url)  # the restarted, empty Redis counts again
    finally:
        await client.aclose()


async def test_the_api_answers_while_its_redis_is_down(
    private_redis: RedisProcess, seeded_dsn: str
) -> None:
    app = create_app(api_settings(redis_url=private_redis.url), dsn=seeded_dsn)
    async with running(app) as client:
        path = "/suppliers/1"
        assert (await client.get(path, headers=key_for(1))).status_code in (200, 404)
        private_redis.stop()
        statuses = [(await client.get(path, headers=key_for(1))).status_code for _ in range(20)]
        ready = await client.get("/health/ready")
    assert set(statuses) <= {200, 404}  # no 500 from the limiter, the cache or anything
    assert services_of(app).limiter.fallbacks == 20
    assert ready.status_code == 200
    assert ready.json()["status"] == "warn"


def test_a_share_outside_zero_to_one_is_refused() -> None:
    from wedsync_perf.errors import ConfigError

    with pytest.raises(ConfigError, match="local share"):
        RateLimiter("4/minute", local_share=1.5)
