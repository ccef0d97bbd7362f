"""Faults on a wedding Saturday, second by second: what a client sees while Redis is
killed, frozen, or the server is overloaded or stormed with connections — the
performance layer beside the same app built the usual way (the layer off, a plain
`limits` + redis-py rate limiter with no fallback: `benchmarks/_plain.py`), in one run.

Each trial: a fresh private redis-server (the test suite's `RedisProcess`), one API
worker on a seeded database (scale 0.2) using it, the wedding-Saturday mix offered
open-loop by `constant_rate` at `BASE_RPS` for `TRIAL_S` seconds, the fault from
`FAULT_AT_S` to `FAULT_END_S`:

* `redis_kill`: the Redis process killed (SIGKILL), started again (empty) at the end;
* `redis_pause`: SIGSTOP, then SIGCONT (a hung Redis: connections stay open);
* `overload`: the offered rate raised to `OVERLOAD_RPS`, above either server's capacity;
* `storm`: 500 extra connections opened beside the load, each sending half a request
  head, closed and reopened in turn;
* `pg_restart`: PostgreSQL stopped (fast shutdown), started again at the end;
* `pg_kill`: every API backend terminated (`pg_terminate_backend`) once a second.

The PostgreSQL trials run on a private PostgreSQL of their own (`testing_postgres`),
seeded the same way.

Per second: answers by status (0 = no answer within 5 s, or a broken connection), and
the p95 of the answers completed in that second. `failed` counts no answer and every
5xx but 503; a 503 (and a 429) is a refusal a client can act on — it carries
`Retry-After`, which the test suite checks — and a 4xx is the app's answer (the mix
books some slots twice: 409). `recovery_s`: from the end of the fault to the first second
from which every second has no failures and a p95 within 3x the pre-fault p95 (at least
100 ms). Every trial is in the JSON; the summary prints failed requests and recovery per
trial and variant.

Run: `make bench-faults` (DATABASE_URL, else the embedded PostgreSQL). About 10 minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (
    factory_server,
    machine,
    seeded_wedding_saturday,
    versions,
    write_result,
)
from benchmarks._timeline import REFUSALS, TimedStats, Timeline, failed
from wedsync_perf.calendar import Regime
from wedsync_perf.loadgen.constant_rate import EncodedRequest, constant_rate, encode
from wedsync_perf.loadgen.stats import EndpointStats, LoadStats
from wedsync_perf.testing import RedisProcess, free_port
from wedsync_perf.testing_postgres import PostgresProcess, private_postgres
from wedsync_perf.traffic import MIX_BY_REGIME

ROOT = Path(__file__).resolve().parent.parent
BASE_RPS = 200
OVERLOAD_RPS = 2400
TRIAL_S = 25
FAULT_AT_S = 5
FAULT_END_S = 15
STORM_CONNECTIONS = 500
VARIANTS = {
    "layer": ("wedsync_api.app:create_app", {"WEDSYNC_API_LAYER": "on"}),
    "plain": ("benchmarks._plain:create_plain_app", {"WEDSYNC_API_LAYER": "off"}),
}


def recovery_s(rows: list[dict[str, Any]]) -> float | None:
    before = [r["p95_ms"] for r in rows[1:FAULT_AT_S] if r["p95_ms"] is not None]
    bound = max(100.0, 3 * (sorted(before)[len(before) // 2] if before else 0.0))
    after = rows[FAULT_END_S:]
    for i in range(len(after)):
        if all(r["failed"] == 0 and (r["p95_ms"] or 0) <= bound for r in after[i:]):
            return float(i)
    return None


async def storm(port: int, stop: asyncio.Event) -> int:
    """Hold `STORM_CONNECTIONS` connections that each send half a request head; reopen
    each one the server closes (or every second). Returns the connections opened."""
    opened = 0

    async def one() -> None:
        nonlocal opened
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            opened += 1
            writer.write(b"GET /health/live HTTP/1.1\r\nHost: storm\r\n")
            with contextlib.suppress(TimeoutError, OSError):
                async with asyncio.timeout(1.0):
                    await reader.read()
            writer.close()

    await asyncio.gather(*(one() for _ in range(STORM_CONNECTIONS)))
    return opened


async def run_trial(
    trial: str,
    variant: str,
    dsn: str,
    requests_for: Callable[[int], list[EncodedRequest]],
    pg: PostgresProcess | None = None,
) -> dict[str, Any]:
    factory, env = VARIANTS[variant]
    if variant == "layer":
        env = {**env, "WEDSYNC_API_WARM_DATES": os.environ["BENCH_FAULTS_DAY"]}
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisProcess(free_port(), Path(tmp) / "redis")
        redis.start()
        try:
            async with factory_server(factory, dsn, {"REDIS_URL": redis.url, **env}) as (port, _):
                requests = requests_for(port)
                timeline = Timeline()
                stats = TimedStats(timeline)
                extra: dict[str, Any] = {}
                actions = await fault_actions(trial, redis, pg, port, requests, stats, extra)
                load = asyncio.create_task(
                    constant_rate("127.0.0.1", port, requests, rps=BASE_RPS,
                                  duration_s=TRIAL_S, stats=stats)
                )  # fmt: skip
                await asyncio.sleep(FAULT_AT_S)
                await actions[0]()
                await asyncio.sleep(FAULT_END_S - FAULT_AT_S)
                await actions[1]()
                await load
        finally:
            redis.stop()
    rows = timeline.seconds()
    total = sum(sum(r["statuses"].values()) for r in rows)
    summary = {
        "trial": trial,
        "variant": variant,
        "requests": total,
        "failed": sum(r["failed"] for r in rows),
        "refused": sum(n for r in rows for s, n in r["statuses"].items() if int(s) in REFUSALS),
        "recovery_s": recovery_s(rows),
        "by_class": {p.value: class_figures(e) for p, e in stats.by_class().items()},
        "timeline": rows,
        **extra,
    }
    critical = summary["by_class"].get("critical", {})
    print(f"{trial:12} {variant:6} requests {total:6,}  failed {summary['failed']:6,}"
          f"  refused {summary['refused']:6,}  recovery {summary['recovery_s']} s"
          f"  critical answered {critical.get('answered', 0):,}/{critical.get('requests', 0):,}"
          f" p95 {critical.get('p95_ms')} ms", flush=True)  # fmt: skip
    return summary


def class_figures(stats: EndpointStats) -> dict[str, Any]:
    """One priority class over the whole trial: answered (2xx-4xx), refused, failed."""
    count = stats.statuses.items()
    return {
        "requests": stats.count,
        "answered": sum(n for s, n in count if 200 <= s < 500 and s not in REFUSALS),
        "refused": sum(n for s, n in count if s in REFUSALS),
        "failed": sum(n for s, n in count if failed(s)),
        "p95_ms": round(stats.quantile_ms(0.95) or 0, 1),
    }


async def fault_actions(
    trial: str,
    redis: RedisProcess,
    pg: PostgresProcess | None,
    port: int,
    requests: list[EncodedRequest],
    stats: LoadStats,
    extra: dict[str, Any],
) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """(start the fault, end it) for `trial`."""
    if trial == "redis_kill":

        async def kill() -> None:
            redis.kill()

        async def restart() -> None:
            redis.start()

        return kill, restart
    if trial == "redis_pause":

        async def pause() -> None:
            redis.pause()

        async def resume() -> None:
            redis.resume()

        return pause, resume
    if trial == "overload":
        surge: list[asyncio.Task[Any]] = []

        async def surge_on() -> None:
            surge.append(asyncio.create_task(constant_rate(
                "127.0.0.1", port, requests, rps=OVERLOAD_RPS - BASE_RPS,
                duration_s=FAULT_END_S - FAULT_AT_S, stats=stats)))  # fmt: skip

        async def surge_off() -> None:
            await surge[0]

        return surge_on, surge_off
    if trial == "storm":
        stop = asyncio.Event()
        storming: list[asyncio.Task[int]] = []

        async def storm_on() -> None:
            storming.append(asyncio.create_task(storm(port, stop)))

        async def storm_off() -> None:
            stop.set()
            extra["storm_connections_opened"] = await storming[0]

        return storm_on, storm_off
    if trial in PG_TRIALS:
        assert pg is not None
        return pg_actions(trial, pg)
    raise ValueError(trial)


def pg_actions(
    trial: str, pg: PostgresProcess
) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    if trial == "pg_restart":

        async def down() -> None:
            await asyncio.to_thread(pg.stop, "fast")

        async def up() -> None:
            await asyncio.to_thread(pg.start)

        return down, up
    stop = asyncio.Event()
    killing: list[asyncio.Task[None]] = []

    async def kill_every_second() -> None:
        admin = await asyncpg.connect(pg.url)
        try:
            while not stop.is_set():
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            await admin.close()

    async def start() -> None:
        killing.append(asyncio.create_task(kill_every_second()))

    async def end() -> None:
        stop.set()
        await killing[0]

    return start, end


TRIALS = ("redis_kill", "redis_pause", "overload", "storm")
PG_TRIALS = ("pg_restart", "pg_kill")


async def main() -> None:
    mix = MIX_BY_REGIME[Regime.WEDDING_DAY]

    async def trials(names: tuple[str, ...], pg: PostgresProcess | None = None) -> list[Any]:
        server = pg.url if pg is not None else None
        prefix = "wedsync_bench_faults"
        async with seeded_wedding_saturday(prefix, 0.2, server=server) as (dsn, workload):
            os.environ["BENCH_FAULTS_DAY"] = workload.day.isoformat()

            def requests_for(port: int) -> list[EncodedRequest]:
                rng = random.Random(7)
                return [encode(workload.next_request(mix.pick(rng), rng), f"127.0.0.1:{port}")
                        for _ in range(20_000)]  # fmt: skip

            # Interleaved: a disturbed minute on this shared machine hits both alike.
            return [
                await run_trial(trial, variant, dsn, requests_for, pg)
                for trial in names
                for variant in VARIANTS
            ]

    results = await trials(TRIALS)
    with private_postgres() as pg:
        results += await trials(PG_TRIALS, pg)
    figures = {
        "trials": results,
        "summary": {
            f"{r['trial']}/{r['variant']}": {
                k: r[k] for k in ("requests", "failed", "refused", "recovery_s")
            }
            for r in results
        },
        "base_rps": BASE_RPS,
        "overload_rps": OVERLOAD_RPS,
        "fault_window_s": [FAULT_AT_S, FAULT_END_S],
        "trial_s": TRIAL_S,
        "versions": versions("uvicorn", "fastapi", "asyncpg", "redis", "limits"),
        "machine": machine(),
    }
    path = write_result("faults", figures)
    print(f"wrote {path}")


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
