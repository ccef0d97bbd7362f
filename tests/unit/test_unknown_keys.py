"""Unknown API keys cost a lookup once per `unknown_ttl_s`, the memory of them is
bounded, and an address out of failed attempts gets 429 without a lookup."""

from __future__ import annotations

from fastapi import FastAPI

from wedsync_perf.pipeline import ApiKeyAuthenticator, FailureLimit, hash_key
from wedsync_perf.pipeline.assemble import install_pipeline
from wedsync_perf.testing import call_asgi


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def authenticator(clock: Clock, **options: float) -> ApiKeyAuthenticator:
    async def lookup(digest: bytes) -> int | None:
        return 7 if digest == hash_key("good") else None

    return ApiKeyAuthenticator(lookup, ttl_s=30, unknown_ttl_s=5, clock=clock, **options)  # type: ignore[arg-type]


async def test_an_unknown_key_is_looked_up_once_per_ttl() -> None:
    clock = Clock()
    auth = authenticator(clock)
    assert [await auth("nope") for _ in range(10)] == [None] * 10
    assert auth.lookups == 1
    clock.now = 5.1
    assert await auth("nope") is None
    assert auth.lookups == 2


async def test_the_memory_of_unknown_keys_is_bounded() -> None:
    auth = authenticator(Clock(), max_entries=10)
    for i in range(100):
        await auth(f"random-{i}")
    assert len(auth._unknown) == 10
    assert not auth.remembers("random-0")
    assert auth.remembers("random-99")


async def test_an_address_out_of_failures_gets_429_without_a_lookup() -> None:
    auth = authenticator(Clock())
    app = FastAPI()

    @app.get("/x")
    async def x() -> dict[str, int]:
        return {}

    await auth("good")  # known before the flood
    install_pipeline(app, authenticate=auth, failures=FailureLimit("3/minute"))
    statuses = []
    for i in range(10):
        sent = await call_asgi(app, "GET", "/x", headers=[(b"x-api-key", b"k%d" % i)])
        statuses.append(sent[0]["status"])
    assert statuses == [401] * 3 + [429] * 7
    assert auth.lookups == 1 + 3
    sent = await call_asgi(app, "GET", "/x", headers=[(b"x-api-key", b"good")])
    assert sent[0]["status"] == 200
