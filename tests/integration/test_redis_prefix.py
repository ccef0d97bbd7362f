"""Every key and channel the project touches carries `WEDSYNC_PERF_REDIS_PREFIX`.

A private Redis records every command (MONITOR, scripts' own calls included) while
the reference API serves cached reads, a check-in (invalidation and bus publish) and
rate-limited requests, and while the fleet view, the alert lease and a replica write
position are written. Redis itself says which arguments of each command are keys
(COMMAND GETKEYS), so no key can hide in an argument this test did not think of.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
import redis.asyncio as redis_asyncio
from redis.crc import key_slot
from redis.exceptions import ResponseError

from tests.conftest import api_settings, key_for, running
from wedsync_api.app import create_app, services_of
from wedsync_perf.database.replicas import WritePositions
from wedsync_perf.keys import RedisKeys
from wedsync_perf.settings import PerfSettings, load_settings
from wedsync_perf.testing import RedisProcess, recorded_redis_commands

pytestmark = pytest.mark.integration

PREFIX = "t9x"
_PUBLISH = {b"PUBLISH", b"SPUBLISH"}
_SUBSCRIBE = {b"SUBSCRIBE", b"SSUBSCRIBE", b"PSUBSCRIBE", b"UNSUBSCRIBE", b"PUNSUBSCRIBE"}
# Every kind of name the workload must have touched, or the test proves nothing.
_KINDS = {
    "cache entry": lambda k: k.startswith(b"t9x:c:{") and b":k:" in k and b":lock" not in k,
    "cache tag": lambda k: k.startswith(b"t9x:c:{") and b":t:" in k,
    "cache lock": lambda k: k.startswith(b"t9x:c:{") and k.endswith(b":lock"),
    "fleet window": lambda k: k.startswith(b"t9x:f:{default}:w:"),
    "fleet profile": lambda k: k.startswith(b"t9x:f:{default}:h:"),
    "alert lease": lambda k: k == b"t9x:f:{default}:lease:alerts",
    "write position": lambda k: k.startswith(b"t9x:lsn:{"),
    "rate limit": lambda k: k.startswith(b"t9x:rl:LIMITER/"),
}


async def _keys_of(client: redis_asyncio.Redis, commands: list[list[bytes]]) -> list[list[bytes]]:
    """The keys of each command, as Redis itself finds them (one pipeline)."""
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.command_getkeys(*command)
    found = await pipe.execute(raise_on_error=False)
    return [
        []  # no key arguments (PING, SCRIPT LOAD, CLIENT …): an error reply
        if isinstance(keys, ResponseError)
        else [k.encode() if isinstance(k, str) else bytes(k) for k in keys]
        for keys in found
    ]


async def _workload(url: str, seeded_dsn: str, db: asyncpg.Connection) -> list[bytes]:
    """Drive every component that writes to Redis; returns the channels live meanwhile."""
    row = await db.fetchrow(
        "SELECT w.id, min(ws.supplier_id) AS vendor FROM weddings w"
        " JOIN wedding_suppliers ws ON ws.wedding_id = w.id WHERE w.tenant_id = 1"
        " GROUP BY w.id ORDER BY w.id LIMIT 1 OFFSET 5"
    )
    assert row is not None
    wedding, vendor = row["id"], row["vendor"]
    app = create_app(api_settings(redis_url=url, rate_limit="20/minute"), dsn=seeded_dsn)
    async with running(app) as client:
        cache = services_of(app).cache
        await asyncio.wait_for(cache.bus.connected.wait(), 10)
        # Response-cache entries (timeline, vendors) and query-cache entries (search:
        # loaded under the cross-process lock).
        paths = [f"/weddings/{wedding}/timeline", f"/weddings/{wedding}/vendors",
                 "/suppliers/search?category=florist"]  # fmt: skip
        for _ in range(2):  # a miss (load, store), then a hit
            for path in paths:
                assert (await client.get(path, headers=key_for(1))).status_code == 200
        checkin = await client.post(
            f"/weddings/{wedding}/checkins",
            json={"supplier_id": vendor, "status": "arrived"},
            headers=key_for(1),
        )
        assert checkin.status_code == 201
        assert (await client.get(paths[1], headers=key_for(1))).status_code == 200
        statuses = [
            (await client.get("/suppliers/1", headers=key_for(2))).status_code for _ in range(21)
        ]
        assert statuses[-1] == 429
        channels = [bytes(c) for c in await services_of(app).redis.pubsub_channels()]
        # The fleet view: windows of 1 s, so one has closed and feeds the hourly profile.
        monitor = services_of(app).monitor
        window_s = monitor.recorder.window_s
        boundary = (time.time() // window_s + 1) * window_s
        while time.time() < boundary:  # noqa: ASYNC110 - until this window has closed
            await asyncio.sleep(0.05)
        assert (await client.get(paths[0], headers=key_for(1))).status_code == 200
        assert await monitor.publisher.flush() > 0
        async with asyncio.timeout(20):  # the evaluator takes the lease every window
            while not monitor.alerts.leader:  # noqa: ASYNC110 - its state, not time
                await asyncio.sleep(0.1)
    perf = load_settings(PerfSettings)
    redis = redis_asyncio.Redis.from_url(url)
    try:
        positions = WritePositions(redis, keys=RedisKeys(perf.redis_prefix))
        positions.cluster = "7301234567890123456"
        await positions.record(1, 0x1_6B37_4D48)
        assert await positions.last(1) == 0x1_6B37_4D48
    finally:
        await redis.aclose()
    return channels


async def test_every_key_and_channel_carries_the_prefix(
    private_redis: RedisProcess,
    seeded_dsn: str,
    db: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEDSYNC_PERF_REDIS_PREFIX", PREFIX)
    monkeypatch.setenv("WEDSYNC_PERF_WINDOW_S", "1")  # windows close (and feed the profile)
    monkeypatch.setenv("WEDSYNC_PERF_RETENTION_S", "60")  # and each read asks for few
    async with recorded_redis_commands(private_redis.port) as commands, asyncio.timeout(120):
        live_channels = await _workload(private_redis.url, seeded_dsn, db)

    client = redis_asyncio.Redis.from_url(private_redis.url)
    try:
        touched: set[bytes] = set()
        published: set[bytes] = set()
        subscribed: set[bytes] = set()
        spread: list[list[bytes]] = []
        for command, keys in zip(commands, await _keys_of(client, commands), strict=True):
            name = command[0].upper()
            if name in _PUBLISH:
                published.add(command[1])
            elif name in _SUBSCRIBE:
                subscribed.update(command[1:])
            touched.update(keys)
            if len({key_slot(k) for k in keys}) > 1:
                spread.append(command)
        stored = [k async for k in client.scan_iter(count=1000)]
        entries = [k for k in stored if _KINDS["cache entry"](k)]
        headers = [(await client.get(k) or b"").split(b"\n", 1)[0].split()[::2] for k in entries]
    finally:
        await client.aclose()

    assert len(commands) > 100
    strays = sorted(k for k in touched | set(stored) if not k.startswith(b"t9x:"))
    assert not strays, f"keys without the prefix: {strays[:20]}"
    channels = published | subscribed | set(live_channels)
    assert channels == {b"t9x:c:bus"}, f"channels: {sorted(channels)}"
    assert published
    assert subscribed
    missing = [kind for kind, match in _KINDS.items() if not any(match(k) for k in touched)]
    assert not missing, f"the workload never touched a {missing}"
    # One slot per command or script: on Redis Cluster each would otherwise fail.
    assert not spread, f"commands over several slots: {spread[:5]}"
    # The read script also reads an entry's tags, named in the entry: same slot again.
    assert entries
    assert any(headers)
    for entry, tags in zip(entries, headers, strict=True):
        assert {key_slot(t) for t in tags} <= {key_slot(entry)}, (entry, tags)
