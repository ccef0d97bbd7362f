"""The server's own bounds, on a real uvicorn: a connection that sends nothing, or half
a request head, is closed after the header timeout (also between requests on a kept-
alive connection); SIGTERM ends the process within the graceful-shutdown time even
with a request that never finishes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wedsync_perf.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD_S = 30  # only so a regression fails instead of hanging the suite


@pytest.fixture
def server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    code = (
        "from wedsync_perf.serving import serve; "
        f"serve('tests.integration.serving_app:app', port={port}, header_timeout_s=0.5,"
        " graceful_shutdown_s=1, log_level='warning')"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    try:
        asyncio.run(_wait_listening(port))
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def _wait_listening(port: int) -> None:
    async with asyncio.timeout(HANG_GUARD_S):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


async def closed_by_server(port: int, send: bytes) -> bytes:
    """What the server sent before closing a connection on which `send` was written."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(send)
    await writer.drain()
    async with asyncio.timeout(HANG_GUARD_S):
        received = await reader.read()  # until EOF: the server closed it
    writer.close()
    await writer.wait_closed()
    return received


def test_a_connection_that_sends_nothing_is_closed(server: tuple[int, object]) -> None:
    port, _ = server
    assert asyncio.run(closed_by_server(port, b"")) == b""


def test_half_a_request_head_is_closed(server: tuple[int, object]) -> None:
    port, _ = server
    assert asyncio.run(closed_by_server(port, b"GET / HTTP/1.1\r\nHost: x\r\n")) == b""


def test_half_a_head_after_a_kept_alive_request_is_closed(server: tuple[int, object]) -> None:
    port, _ = server
    first = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    received = asyncio.run(closed_by_server(port, first + b"GET / HTTP/1.1\r\nHo"))
    assert received.startswith(b"HTTP/1.1 200")  # the complete request was answered
    assert received.count(b"HTTP/1.1") == 1


def test_sigterm_ends_the_server_within_the_graceful_time(
    server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, proc = server

    async def hold_then_terminate() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)  # not a race: the request is in flight either way
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(HANG_GUARD_S):
            received = await reader.read()
        writer.close()
        return received

    asyncio.run(hold_then_terminate())
    # uvicorn ends by re-raising the signal it caught, after its shutdown
    assert proc.wait(timeout=HANG_GUARD_S) in (0, -signal.SIGTERM)


def test_a_connection_storm_does_not_stop_requests_and_is_closed(
    server: tuple[int, object],
) -> None:
    """300 connections that each send half a head: a real request is still answered
    beside them, and the server closes every one of them (none is left holding a
    descriptor)."""
    port, _ = server

    async def storm() -> tuple[bytes, list[bytes]]:
        async with asyncio.timeout(HANG_GUARD_S):
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(300)]
            for _, writer in held:
                writer.write(b"GET / HTTP/1.1\r\nHost: storm\r\n")
            answer = await closed_by_server(
                port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            closed = [await reader.read() for reader, _ in held]  # EOF: closed by the server
            for _, writer in held:
                writer.close()
        return answer, closed

    answer, closed = asyncio.run(storm())
    assert answer.startswith(b"HTTP/1.1 200")
    assert closed == [b""] * 300
