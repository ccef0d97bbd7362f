"""A constant-rate HTTP/1.1 load generator fast enough to overload a Python server from
the same machine.

`drive()` (httpx) saturated before the server it was measuring on 2 shared cores
(`bench-e2e`'s first runs). Here each request is pre-encoded bytes written to a
keep-alive connection by a bare asyncio protocol, and the response is read only as far
as its status line and length, as wrk2 does in C; `bench-e2e` reports the generator's
own CPU per step (0.12–0.19 of a core at 1,000 req/s).

Arrivals are scheduled by the clock (request *i* is due at `start + i / rps`) and
latency is measured from that due time, not from when a connection became free: if the
server stalls, the requests that could not be sent count their wait (wrk2's correction
for coordinated omission). One request per connection at a time (no pipelining); more
connections are opened as needed, up to `max_connections`, beyond which due requests
wait in a backlog — still timed from when they were due. A request unanswered
`timeout_s` after it was due is a timeout (status 0), its connection closed. The
generator wakes at most once a millisecond and sends what fell due meanwhile, so a
latency includes up to ~1 ms of its own timing.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from wedsync_perf.errors import InvalidValue
from wedsync_perf.loadgen.driver import TRANSPORT_ERROR, RequestSpec
from wedsync_perf.loadgen.stats import LoadStats
from wedsync_perf.priorities import PriorityClass

__all__ = ["EncodedRequest", "constant_rate", "encode"]


@dataclass(frozen=True, slots=True)
class EncodedRequest:
    """A request as the bytes sent, with where its result is recorded."""

    data: bytes
    endpoint: str
    priority: PriorityClass
    expected: frozenset[int]


def encode(spec: RequestSpec, host: str) -> EncodedRequest:
    """`spec` as an HTTP/1.1 keep-alive request to `host`."""
    body = b""
    headers = {k.lower(): v for k, v in spec.headers.items()}
    if spec.json is not None:
        body = jsonlib.dumps(spec.json).encode()
        headers.setdefault("content-type", "application/json")
    elif spec.content is not None:
        body = spec.content
    lines = [f"{spec.method} {spec.path} HTTP/1.1", f"host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k not in ("host", "content-length")]
    if body or spec.method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return EncodedRequest(head + body, spec.endpoint, spec.priority, spec.expected)


class _Incomplete(Exception):
    pass


def _response_length(buf: bytearray) -> tuple[int, int, bool]:
    """(status, bytes the whole response takes, server will close) — or `_Incomplete`."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        raise _Incomplete
    head = bytes(buf[:end]).lower()
    status = int(head[9:12])
    close = b"\r\nconnection: close" in head
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        total = end + 4 + length
        if len(buf) < total:
            raise _Incomplete
        return status, total, close
    if b"\r\ntransfer-encoding: chunked" in head:
        pos = end + 4
        while True:  # walk the chunks: size line, data, CRLF; a zero size ends it
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                raise _Incomplete
            size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
            pos = line_end + 2 + size + 2
            if len(buf) < pos:
                raise _Incomplete
            if size == 0:
                return status, pos, close
    return status, end + 4, close  # no body (204, 304) — or a close-delimited one we treat so


class _Connection(asyncio.Protocol):
    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.current: EncodedRequest | None = None
        self.due = 0.0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, request: EncodedRequest, due: float) -> None:
        assert self.transport is not None
        self.current, self.due = request, due
        self.transport.write(request.data)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.current is None:
            return
        try:
            status, length, close = _response_length(self.buf)
        except _Incomplete:
            return
        except ValueError:  # not HTTP: count it and drop the connection
            status, length, close = TRANSPORT_ERROR, len(self.buf), True
        del self.buf[:length]
        request, self.current = self.current, None
        self.run.finished(self, request, self.due, status)
        if close:
            self.abort()
        else:
            self.run.free(self)

    def abort(self) -> None:
        """Close now, recording an unanswered request as failed here rather than from
        `connection_lost` (which the loop calls later, perhaps after the run ended)."""
        transport = None if self.closed else self.transport
        self.connection_lost(None)
        if transport is not None:
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.current is not None:
            request, self.current = self.current, None
            self.run.finished(self, request, self.due, TRANSPORT_ERROR)
        if not self.closed:
            self.closed = True
            self.run.lost(self)


class _Run:
    def __init__(
        self, host: str, port: int, stats: LoadStats, max_connections: int, timeout_s: float
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.host, self.port = host, port
        self.stats = stats
        self.max_connections = max_connections
        self.timeout_s = timeout_s
        self.idle: list[_Connection] = []
        self.busy: set[_Connection] = set()
        self.opening = 0
        self.backlog: deque[tuple[EncodedRequest, float]] = deque()
        self.tasks: set[asyncio.Task[None]] = set()

    def _record(self, request: EncodedRequest, due: float, status: int) -> None:
        self.stats.endpoint(request.endpoint, request.priority).record(
            self.loop.time() - due, status, status in request.expected
        )

    def connections(self) -> int:
        return len(self.idle) + len(self.busy) + self.opening

    def submit(self, request: EncodedRequest, due: float) -> None:
        if self.idle:
            self._send(self.idle.pop(), request, due)
            return
        self.backlog.append((request, due))
        if self.connections() < self.max_connections:
            self._open()

    def _send(self, conn: _Connection, request: EncodedRequest, due: float) -> None:
        self.busy.add(conn)
        conn.send(request, due)

    def _open(self) -> None:
        self.opening += 1
        task = self.loop.create_task(self._connect())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect(self) -> None:
        try:
            _, conn = await self.loop.create_connection(
                lambda: _Connection(self), self.host, self.port
            )
        except OSError:
            self.opening -= 1
            if self.backlog:  # the one waiting for this connection fails, not hangs
                self._record(*self.backlog.popleft(), TRANSPORT_ERROR)
            return
        self.opening -= 1
        self.free(conn)

    def finished(self, conn: _Connection, request: EncodedRequest, due: float, status: int) -> None:
        self.busy.discard(conn)
        self._record(request, due, status)

    def free(self, conn: _Connection) -> None:
        """`conn` can take another request: the oldest waiting one that has not expired."""
        now = self.loop.time()
        while self.backlog:
            request, due = self.backlog.popleft()
            if now - due < self.timeout_s:
                self._send(conn, request, due)
                return
            self._record(request, due, TRANSPORT_ERROR)
        self.idle.append(conn)

    def lost(self, conn: _Connection) -> None:
        self.busy.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if self.backlog and self.connections() < self.max_connections:
            self._open()

    def expire(self) -> None:
        """Abort requests unanswered `timeout_s` after they were due."""
        now = self.loop.time()
        for conn in [c for c in self.busy if now - c.due >= self.timeout_s]:
            conn.abort()
        while self.backlog and now - self.backlog[0][1] >= self.timeout_s:
            self._record(*self.backlog.popleft(), TRANSPORT_ERROR)

    def close(self) -> None:
        while self.backlog:
            self._record(*self.backlog.popleft(), TRANSPORT_ERROR)
        for conn in list(self.busy) + self.idle:
            conn.abort()
        for task in self.tasks:
            task.cancel()


async def constant_rate(
    host: str,
    port: int,
    requests: Sequence[EncodedRequest],
    *,
    rps: float,
    duration_s: float,
    stats: LoadStats | None = None,
    max_connections: int = 1024,
    timeout_s: float = 5.0,
) -> LoadStats:
    """Send `requests` (cycled) at `rps` for `duration_s`, then wait up to `timeout_s` for
    the answers still due. Every due request is recorded once: answered, failed, or timed
    out (status 0) — none is silently dropped."""
    if rps <= 0:
        raise InvalidValue("rps", rps, "a positive request rate")
    if duration_s <= 0:
        raise InvalidValue("duration_s", duration_s, "a positive number of seconds")
    if not requests:
        raise InvalidValue("requests", requests, "a non-empty sequence of requests to cycle")
    if max_connections < 1:
        raise InvalidValue("max_connections", max_connections, "at least 1 connection")
    stats = stats if stats is not None else LoadStats()
    run = _Run(host, port, stats, max_connections, timeout_s)
    loop = run.loop
    total = int(rps * duration_s)
    start = loop.time()
    sent = 0
    next_expiry = start
    try:
        while sent < total:
            now = loop.time()
            due_now = min(total, int((now - start) * rps) + 1)
            while sent < due_now:
                run.submit(requests[sent % len(requests)], start + sent / rps)
                sent += 1
            if now >= next_expiry:
                run.expire()
                next_expiry = now + 0.05
            # Timers are millisecond-grained: a shorter sleep would spin. Requests that fall
            # due meanwhile go out together at the next wake, timed from when they were due.
            await asyncio.sleep(max(0.001, start + sent / rps - loop.time()))
        stats.finished_at = stats.started_at + (loop.time() - start)
        deadline = loop.time() + timeout_s + 0.1
        while (run.busy or run.backlog or run.opening) and loop.time() < deadline:
            run.expire()
            await asyncio.sleep(0.02)
        run.expire()
    finally:
        run.close()
    return stats
