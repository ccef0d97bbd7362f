"""Client-side balancing across 11 real local HTTP backends (Linkerd's "Beyond Round
Robin" set-up at Python scale).

The backends run in their own process (asyncio servers on 11 ports, HTTP/1.1 keep-alive):
each answers after a lognormal delay (median 20 ms); backend 0 answers after 2 s for
the first half of the run; backend 1 flaps, answering 500 for 5 s out of every 10.
The client sends 150 req/s open-loop for 20 s with a 1 s timeout through
`BalancedTransport` with each policy in turn (fresh backends each time): plain round
robin and plain least request (P2C on pending) — no ejection, no retries, as in
Linkerd's comparison — and ours: P2C peak-EWMA with outlier ejection and one retry under
the budget. Then every backend answers 500: the retries the budget allows, per request.

Run: `make bench-balancer` (no servers needed).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, versions, write_result
from wedsync_perf.scaling.balancer import BalancedTransport
from wedsync_perf.testing import free_port, http_handler

BACKENDS = 11
RPS = 150
SECONDS = 20.0
POLICIES = ("round_robin", "least_request", "p2c_ewma")


async def serve(ports: list[int], mode: str) -> None:
    started = time.monotonic()
    rng = random.Random(1)

    def handler_for(index: int):  # type: ignore[no-untyped-def]
        async def respond(method: str, path: str) -> tuple[str, bytes]:
            elapsed = time.monotonic() - started
            delay = rng.lognormvariate(np.log(0.02), 0.3)
            status = "200 OK"
            if mode == "all_fail" or (index == 1 and int(elapsed // 5) % 2 == 1):
                status, delay = "500 Internal Server Error", 0.005
            elif index == 0 and elapsed < SECONDS / 2 + 2:
                delay = 2.0
            await asyncio.sleep(delay)
            return status, b"ok"

        return http_handler(respond)

    servers = [
        await asyncio.start_server(handler_for(i), "127.0.0.1", p) for i, p in enumerate(ports)
    ]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def start_backends(mode: str) -> tuple[subprocess.Popen[str], list[str]]:
    ports = [free_port() for _ in range(BACKENDS)]
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, *map(str, ports)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process, [f"http://127.0.0.1:{p}" for p in ports]


async def drive(policy: str, mode: str = "mixed") -> dict[str, float]:
    process, urls = start_backends(mode)
    plain = {} if policy == "p2c_ewma" else {"eject_after": 10**9, "max_attempts": 1}
    transport = BalancedTransport(urls, policy=policy, seed=3, **plain)  # type: ignore[arg-type]
    latencies: list[float] = []
    ok = failed = 0
    try:
        async with httpx.AsyncClient(transport=transport, timeout=1.0) as client:

            async def one() -> None:
                nonlocal ok, failed
                started = time.perf_counter()
                try:
                    response = await client.get("http://vendors/slot")
                    good = response.status_code < 500
                except httpx.HTTPError:
                    good = False
                latencies.append(time.perf_counter() - started)
                ok, failed = (ok + 1, failed) if good else (ok, failed + 1)

            tasks = []
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i in range(int(RPS * SECONDS)):
                delay = start + i / RPS - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks)
    finally:
        process.terminate()
        process.wait(10)
    return {
        "success_rate": round(ok / (ok + failed), 4),
        "p99_ms": round(float(np.quantile(latencies, 0.99)) * 1000, 1),
        "p50_ms": round(float(np.quantile(latencies, 0.5)) * 1000, 1),
        "retries": transport.retries,
        "requests": transport.requests,
    }


async def main() -> None:
    results = {policy: await drive(policy) for policy in POLICIES}
    failing = await drive("p2c_ewma", mode="all_fail")
    figures = {
        "p99_ms": {p: r["p99_ms"] for p, r in results.items()},
        "success_rate": {p: r["success_rate"] for p, r in results.items()},
        "retry_ratio_all_failing": round(failing["retries"] / failing["requests"], 3),
        "runs": results,
        "all_failing": failing,
        "setup": {"backends": BACKENDS, "rps": RPS, "seconds": SECONDS, "timeout_s": 1.0},
        "versions": versions("httpx"),
        "machine": machine(),
    }
    path = write_result("balancer", figures)
    for policy, r in results.items():
        print(f"{policy:14s} success {r['success_rate']:.2%}  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms"
              f"  retries {r['retries']}")  # fmt: skip
    print(
        f"all backends failing: {figures['retry_ratio_all_failing']:.1%} retries per request; wrote {path}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        asyncio.run(serve([int(p) for p in sys.argv[3:]], sys.argv[2]))
    else:
        asyncio.run(main())
