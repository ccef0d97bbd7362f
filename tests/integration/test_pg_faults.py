"""PostgreSQL faults under the reference API, on a private server the tests stop,
restart and whose backends they kill: fast and immediate restarts, every API backend
terminated, a large import cut off mid-COPY.

Each trial asserts: no 500 at all, every refusal a 503 with `Retry-After`, the API
answering again once PostgreSQL is up, every acknowledged write in the database, no
pool connection or lane slot left held, no partial import. Waits are on conditions
(answers seen, backends gone), each under one generous hang guard; nothing asserts a
latency figure.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import MONITORING, api_settings, key_for, running
from wedsync_api.app import create_app, services_of
from wedsync_perf.database import LanedPool
from wedsync_perf.database.errors import DatabaseUnavailable
from wedsync_perf.database.lazy import LazyConnection
from wedsync_perf.database.transactions import run_in_transaction
from wedsync_perf.priorities import PriorityClass
from wedsync_perf.testing_postgres import PostgresProcess, StopMode

pytestmark = pytest.mark.integration

HANG_GUARD_S = 30.0  # nothing here should come near it; it turns a hang into a failure
TENANT = 1
APP = "wedsync_api"  # the pool's application_name
_days = itertools.count()


def trial_app(dsn: str, **overrides: object) -> FastAPI:
    settings: dict[str, object] = {"pool_max_size": 6, "pool_reserved_critical": 2,
                                   "pool_max_bulk": 2, **overrides}  # fmt: skip
    return create_app(api_settings(**settings), dsn=dsn)


@dataclass
class Answer:
    kind: str
    status: int  # 0: no answer within the hang guard
    retry_after: str | None = None
    body: Any = None


@dataclass
class Targets:
    weddings: list[int]
    booked: list[tuple[int, int]]  # (wedding, supplier) pairs to check in
    venues: list[int]


async def targets(dsn: str) -> Targets:
    conn = await asyncpg.connect(dsn)
    try:
        weddings = [r[0] for r in await conn.fetch(
            "SELECT id FROM weddings WHERE tenant_id = $1 ORDER BY id LIMIT 20", TENANT)]  # fmt: skip
        booked = [(r[0], r[1]) for r in await conn.fetch(
            "SELECT wedding_id, supplier_id FROM wedding_suppliers WHERE tenant_id = $1"
            " ORDER BY 1, 2 LIMIT 40", TENANT)]  # fmt: skip
        venues = [r[0] for r in await conn.fetch(
            "SELECT id FROM venues WHERE tenant_id = $1 ORDER BY id LIMIT 10", TENANT)]  # fmt: skip
    finally:
        await conn.close()
    return Targets(weddings, booked, venues)


class Load:
    """Closed-loop clients sending the wedding-day mix (timeline reads, check-ins,
    messages, venue bookings) until stopped; every answer is kept."""

    def __init__(self, client: httpx.AsyncClient, to: Targets, workers: int = 6) -> None:
        self.client = client
        self.to = to
        self.answers: list[Answer] = []
        self._changed = asyncio.Condition()
        self._stopped = False
        self._n = itertools.count()
        self._tasks = [asyncio.create_task(self._work(i)) for i in range(workers)]

    def request(self, n: int) -> tuple[str, str, str, dict[str, Any] | None]:
        to = self.to
        wedding = to.weddings[n % len(to.weddings)]
        match n % 4:
            case 0 if n % 8 == 0:  # cached: answers from the cache through an outage
                return "read", "GET", f"/weddings/{wedding}/timeline", None
            case 0:  # its cache is dropped by every booking: mostly the database
                venue = to.venues[n % len(to.venues)]
                span = "from=2031-01-01&to=2031-03-01"
                return "read", "GET", f"/venues/{venue}/availability?{span}", None
            case 1:
                return "message", "POST", f"/weddings/{wedding}/messages", {
                    "sender": "planner", "body": f"token-{n}"}  # fmt: skip
            case 2:
                w, supplier = to.booked[n % len(to.booked)]
                return "checkin", "POST", f"/weddings/{w}/checkins", {"supplier_id": supplier}
            case _:
                venue = to.venues[n % len(to.venues)]
                day = date(2031, 1, 1) + timedelta(days=next(_days))  # never booked twice
                return "booking", "POST", f"/venues/{venue}/bookings", {"day": day.isoformat()}

    async def _work(self, worker: int) -> None:
        while not self._stopped:
            kind, method, path, body = self.request(next(self._n))
            sent = self.client.request(method, path, json=body, headers=key_for(TENANT))
            try:  # in-process, httpx's own timeout never fires: the guard is ours
                response = await asyncio.wait_for(sent, HANG_GUARD_S)
                answer = Answer(kind, response.status_code, response.headers.get("retry-after"),
                                response.json() if response.status_code < 300 else None)  # fmt: skip
            except TimeoutError:
                answer = Answer(kind, 0)
            self.answers.append(answer)
            async with self._changed:
                self._changed.notify_all()
            await asyncio.sleep(0.002)  # pacing: a load generator, not a race

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until `condition()` holds, re-checked after every answer."""
        async with asyncio.timeout(HANG_GUARD_S), self._changed:
            await self._changed.wait_for(condition)

    def since(self, mark: int, ok: bool) -> int:
        return sum(1 for a in self.answers[mark:] if (200 <= a.status < 300) == ok)

    def written_since(self, mark: int) -> int:
        """Writes acknowledged since `mark`: proof the database serves (reads may come
        from the cache)."""
        return sum(1 for a in self.answers[mark:] if a.kind != "read" and a.status == 201)

    async def stop(self) -> None:
        self._stopped = True
        await asyncio.gather(*self._tasks)


@asynccontextmanager
async def under_load(app: FastAPI, dsn: str) -> AsyncIterator[tuple[Load, LanedPool]]:
    to = await targets(dsn)
    async with running(app, raise_app_exceptions=False) as client:
        load = Load(client, to)
        try:
            await load.until(lambda: load.written_since(0) >= 20)  # warmed up
            yield load, services_of(app).pool
        finally:
            await load.stop()  # again if the test did: a no-op then


def assert_no_failures(answers: list[Answer]) -> None:
    statuses = {a.status for a in answers}
    assert statuses <= {200, 201, 503}, sorted(statuses)  # no 500, no hang (0), no 4xx
    refused = [a for a in answers if a.status == 503]
    assert all(a.retry_after == "1" for a in refused)


async def assert_nothing_held(pool: LanedPool) -> None:
    assert (pool.in_use, pool.in_use_bulk, sum(pool.waiting().values())) == (0, 0, 0)
    assert pool.pool.get_idle_size() == pool.pool.get_size()  # asyncpg's holders all free
    async with AsyncExitStack() as held:  # and every connection can be taken at once
        for _ in range(pool.size):
            conn = await held.enter_async_context(
                pool.acquire(PriorityClass.CRITICAL, timeout_s=HANG_GUARD_S)
            )
            assert await conn.fetchval("SELECT 1") == 1


async def assert_acknowledged_writes_stored(dsn: str, answers: list[Answer]) -> int:
    acked = {kind: {a.body["id"]: a.body for a in answers if a.kind == kind and a.body}
             for kind in ("message", "checkin", "booking")}  # fmt: skip
    conn = await asyncpg.connect(dsn)
    try:
        messages = {r["id"]: r["body"] for r in await conn.fetch(
            "SELECT id, body FROM messages WHERE id = ANY($1)", list(acked["message"]))}  # fmt: skip
        checkins = {r[0] for r in await conn.fetch(
            "SELECT id FROM checkins WHERE id = ANY($1)", list(acked["checkin"]))}  # fmt: skip
        bookings = {r["id"]: r["day"] for r in await conn.fetch(
            "SELECT id, day FROM venue_bookings WHERE id = ANY($1)", list(acked["booking"]))}  # fmt: skip
    finally:
        await conn.close()
    assert messages == {i: m["body"] for i, m in acked["message"].items()}
    assert checkins == set(acked["checkin"])
    assert {i: d.isoformat() for i, d in bookings.items()} == {
        i: b["day"] for i, b in acked["booking"].items()
    }
    return sum(map(len, acked.values()))


async def api_backends(admin: asyncpg.Connection) -> list[int]:
    return [r[0] for r in await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1", APP)]  # fmt: skip


async def terminate_backends(url: str) -> None:
    """`pg_terminate_backend` every API backend, returning once they have exited."""
    admin = await asyncpg.connect(url)
    try:
        pids = await api_backends(admin)
        await admin.execute("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) AS p", pids)
        async with asyncio.timeout(HANG_GUARD_S):
            while await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
            ):
                pass  # each round trip is the wait: the backends exit on their own
    finally:
        await admin.close()


# -- restarts and kills under load ------------------------------------------------------


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_restart_under_load_refuses_with_503_and_loses_no_write(
    private_postgres: PostgresProcess, private_dsn: str, mode: StopMode
) -> None:
    app = trial_app(private_dsn)
    async with under_load(app, private_dsn) as (load, pool):
        down = len(load.answers)
        await asyncio.to_thread(private_postgres.stop, mode)
        await load.until(lambda: load.since(down, ok=False) >= 30)  # refusals seen
        up = len(load.answers)
        await asyncio.to_thread(private_postgres.start)
        await load.until(lambda: load.written_since(up) >= 30)  # serving again
        await load.stop()
        answers = load.answers
        assert_no_failures(answers)
        assert any(a.status == 503 for a in answers[down:up])
        assert await assert_acknowledged_writes_stored(private_dsn, answers) > 0
        await assert_nothing_held(pool)


async def test_terminated_backends_under_load_cost_no_500(
    private_postgres: PostgresProcess, private_dsn: str
) -> None:
    app = trial_app(private_dsn)
    async with under_load(app, private_dsn) as (load, pool):
        for _ in range(10):
            await terminate_backends(private_postgres.url)
            mark = len(load.answers)
            await load.until(lambda: load.written_since(mark) >= 10)  # noqa: B023
        await load.stop()
        assert_no_failures(load.answers)
        assert pool.connections_lost > 0  # the kills did reach connections in use
        await assert_acknowledged_writes_stored(private_dsn, load.answers)
        await assert_nothing_held(pool)


# -- a large import cut off mid-COPY ----------------------------------------------------

IMPORT_ROWS = 60_000
IMPORT_HEADERS = {**key_for(2), "Content-Type": "text/csv"}


def import_body(rows: int) -> bytes:
    lines = ["name,category,region,lat,lon,price_band"]
    lines += [f"Supplier {n},dj,wales,51.5,-3.2,{n % 4 + 1}" for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


async def imported(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        suppliers = await conn.fetchval("SELECT count(*) FROM suppliers WHERE tenant_id = 2")
        imports = await conn.fetchval("SELECT count(*) FROM imports WHERE tenant_id = 2")
    finally:
        await conn.close()
    return suppliers, imports


@asynccontextmanager
async def copy_stage(dsn: str, stage: str) -> AsyncIterator[None]:
    """ "waiting": a SHARE lock on suppliers, so the import's COPY starts, sends rows
    until the socket's buffers are full and waits — mid-COPY every time. "streaming":
    no lock; the COPY is cut off wherever it has got to (or, rarely, has finished)."""
    admin = await asyncpg.connect(dsn)
    try:
        if stage == "waiting":
            transaction = admin.transaction()
            await transaction.start()
            await admin.execute("LOCK TABLE suppliers IN SHARE MODE")
        yield
    finally:
        admin.terminate()


async def wait_for_copy(dsn: str, stage: str) -> None:
    """Until the API's COPY runs (polled outside the lock's transaction: inside one,
    pg_stat_activity is a snapshot that never changes)."""
    waiting = " AND wait_event_type = 'Lock'" if stage == "waiting" else ""
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(HANG_GUARD_S):
            while not await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                " AND state = 'active' AND query LIKE 'COPY%'" + waiting,
                APP,
            ):
                pass  # each round trip is the wait
    finally:
        await conn.close()


@pytest.mark.parametrize("stage", ["waiting", "streaming"])
@pytest.mark.parametrize("fault", ["terminate", "fast", "immediate"])
async def test_an_import_cut_off_mid_copy_answers_503_and_frees_its_lane(
    private_postgres: PostgresProcess, private_dsn: str, fault: str, stage: str
) -> None:
    before = await imported(private_dsn)
    app = trial_app(private_dsn)
    async with running(app, raise_app_exceptions=False) as client:
        pool = services_of(app).pool
        async with copy_stage(private_dsn, stage):
            upload = asyncio.create_task(client.post(
                "/imports/suppliers", content=import_body(IMPORT_ROWS), headers=IMPORT_HEADERS))  # fmt: skip
            await wait_for_copy(private_dsn, stage)
            if fault == "terminate":
                await terminate_backends(private_postgres.url)
            else:
                await asyncio.to_thread(private_postgres.stop, fault)
            # Waited for, not cancelled at the guard: a cancelled request could still
            # hand back an answer and hide the hang.
            await asyncio.wait({upload}, timeout=HANG_GUARD_S)
            if not upload.done():
                upload.cancel()
                pytest.fail("the import hung")
            answer = upload.result()
        private_postgres.ensure_started()
        if stage == "waiting" or answer.status_code != 201:  # 201: it finished first
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "1"
        await assert_nothing_held(pool)
        ready = (await client.get("/health/ready", headers=MONITORING)).json()
        assert ready["checks"]["pool:bulk"][0]["status"] == "pass"
        small = await client.post(
            "/imports/suppliers", content=import_body(3), headers=IMPORT_HEADERS
        )
        assert small.status_code == 201  # the bulk lane serves the next import
    landed = IMPORT_ROWS if answer.status_code == 201 else 0
    after = await imported(private_dsn)
    assert after == (before[0] + landed + 3, before[1] + bool(landed) + 1)  # all or nothing


# -- the pool's own guarantees ----------------------------------------------------------


@pytest.fixture
async def lanes(private_dsn: str) -> AsyncIterator[LanedPool]:
    raw = await asyncpg.create_pool(
        private_dsn, min_size=0, max_size=3, server_settings={"application_name": APP}
    )
    assert raw is not None
    pool = LanedPool(raw, size=3, reserved_critical=1, max_bulk=1, validate_idle_s=3600)
    yield pool
    await pool.close()


async def test_a_connection_killed_in_use_raises_the_statement_s_error_and_is_given_back(
    private_postgres: PostgresProcess, lanes: LanedPool
) -> None:
    async def use_after_kill() -> None:
        async with lanes.acquire(PriorityClass.BULK) as conn:
            await conn.fetchval("SELECT 1")
            await terminate_backends(private_postgres.url)
            await conn.fetchval("SELECT 1")

    # The statement's own error (asyncpg detaches the proxy of a connection that
    # closed); the release must not replace it with one of its own.
    with pytest.raises(asyncpg.InterfaceError, match=r"fetchval\(\)"):
        await use_after_kill()
    assert lanes.connections_lost == 1
    await assert_nothing_held(lanes)


async def sleeping(lanes: LanedPool, priority: PriorityClass) -> asyncio.Task[None]:
    """A task holding a connection of `priority`'s lane in a minute-long statement."""
    holding = asyncio.Event()

    async def hold() -> None:
        async with lanes.acquire(priority) as conn:
            holding.set()
            await conn.fetchval("SELECT pg_sleep(60)")

    task = asyncio.create_task(hold())
    await holding.wait()
    return task


async def test_a_task_cancelled_on_a_dead_connection_gives_everything_back(
    private_postgres: PostgresProcess, lanes: LanedPool
) -> None:
    task = await sleeping(lanes, PriorityClass.BULK)
    await terminate_backends(private_postgres.url)
    task.cancel()
    with pytest.raises((asyncio.CancelledError, asyncpg.PostgresError)):
        await task
    await assert_nothing_held(lanes)


async def test_close_ends_within_its_bound_while_a_statement_hangs(
    private_postgres: PostgresProcess, lanes: LanedPool
) -> None:
    task = await sleeping(lanes, PriorityClass.STANDARD)
    async with asyncio.timeout(HANG_GUARD_S):
        await lanes.close(timeout_s=0.2)
        with pytest.raises((asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError)):
            await task  # the statement's own error, not one from the release
    assert lanes.in_use == 0
    assert lanes.closed


async def test_a_read_whose_connection_died_runs_once_more_and_a_write_does_not(
    private_postgres: PostgresProcess, lanes: LanedPool
) -> None:
    for idempotent in (True, False):
        conn = LazyConnection(lambda: lanes.acquire(PriorityClass.STANDARD), idempotent=idempotent)
        try:
            assert await conn.fetchval("SELECT 1") == 1
            await terminate_backends(private_postgres.url)
            if idempotent:
                assert await conn.fetchval("SELECT 2") == 2
                assert conn.retried == 1
            else:
                with pytest.raises((asyncpg.InterfaceError, asyncpg.PostgresError)):
                    await conn.fetchval("SELECT 2")
        finally:
            await conn.release()
    await assert_nothing_held(lanes)


async def test_a_statement_past_its_bound_is_unavailable_not_a_bug(lanes: LanedPool) -> None:
    conn = LazyConnection(lambda: lanes.acquire(PriorityClass.CRITICAL), timeout_s=0.2)
    try:
        with pytest.raises(DatabaseUnavailable, match="exceeded"):
            await conn.fetchval("SELECT pg_sleep(5)")
    finally:
        await conn.release()
    await assert_nothing_held(lanes)


async def test_a_transaction_that_lost_a_serialization_conflict_runs_once_more(
    private_dsn: str,
) -> None:
    first, second = await asyncpg.connect(private_dsn), await asyncpg.connect(private_dsn)
    try:
        await first.execute("CREATE TABLE IF NOT EXISTS duty (doctor text, on_call bool)")
        await first.execute("TRUNCATE duty; INSERT INTO duty VALUES ('a', true), ('b', true)")
        both_read = asyncio.Event()
        attempts = []

        async def go_off_call(conn: asyncpg.Connection, doctor: str) -> int:
            """Write skew: each sees two on call and leaves; serializable forbids both."""
            attempts.append(doctor)
            on_call = await conn.fetchval("SELECT count(*) FROM duty WHERE on_call")
            if len(attempts) >= 2:
                both_read.set()
            await both_read.wait()  # the first two meet here; the rerun finds it set
            if on_call > 1:
                await conn.execute("UPDATE duty SET on_call = false WHERE doctor = $1", doctor)
            return int(on_call)

        results = await asyncio.gather(
            run_in_transaction(first, lambda: go_off_call(first, "a"), isolation="serializable"),
            run_in_transaction(second, lambda: go_off_call(second, "b"), isolation="serializable"),
        )
        assert sorted(results) == [1, 2]  # the loser ran again and saw the winner's write
        assert len(attempts) == 3
        assert await first.fetchval("SELECT count(*) FROM duty WHERE on_call") == 1
    finally:
        await first.close()
        await second.close()
