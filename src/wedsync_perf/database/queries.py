"""Per-request query statistics and N+1 detection for asyncpg.

A `RequestQueries` collects (fingerprint, duration) for every statement one request runs
— through a `TimedConnection` wrapper (what the reference API does), or as an asyncpg
query logger (`conn.add_query_logger(queries.observe)`; records then arrive a loop turn
later); `QueryTracker.finish` folds it
into per-route figures and flags an N+1: the same fingerprint at least `min_repeats`
times in one request, together taking at least `min_total_ms` (Sentry's rule, 5 and
50 ms by default). A batched query (`IN (…)`, `= ANY($1)`) is one statement, so batching
is never flagged. Only statement texts are kept, never parameters.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from wedsync_perf.database.fingerprint import fingerprint, shape
from wedsync_perf.errors import InvalidValue
from wedsync_perf.monitoring.sketch import LatencySketch

__all__ = ["NPlusOne", "QueryTracker", "RequestQueries", "RouteQueries"]


@dataclass
class RequestQueries:
    """Statements of one request, in order: fingerprint → [count, seconds, a text]."""

    seen: dict[str, list[Any]] = field(default_factory=dict)
    count: int = 0
    seconds: float = 0.0

    def observe(self, logged: Any) -> None:
        """asyncpg query-logger callback (a `LoggedQuery`); its `args` are ignored."""
        self.add(logged.query, float(logged.elapsed))

    def add(self, sql: str, seconds: float) -> None:
        fp = fingerprint(sql)
        entry = self.seen.get(fp)
        if entry is None:
            self.seen[fp] = [1, seconds, sql]
        else:
            entry[0] += 1
            entry[1] += seconds
        self.count += 1
        self.seconds += seconds


@dataclass
class NPlusOne:
    route: str
    fingerprint: str
    shape: str
    repeats: int  # in the worst request seen
    total_ms: float
    occurrences: int = 1
    last_seen: float = field(default_factory=time.time)


@dataclass
class RouteQueries:
    requests: int = 0
    queries: int = 0
    per_request: LatencySketch = field(default_factory=LatencySketch)  # query time (s)
    max_queries: int = 0


class QueryTracker:
    def __init__(
        self, *, min_repeats: int = 5, min_total_ms: float = 50.0, max_findings: int = 200
    ) -> None:
        if min_repeats < 2:
            raise InvalidValue("min_repeats", min_repeats, "at least 2 repeats")
        if min_total_ms < 0:
            raise InvalidValue("min_total_ms", min_total_ms, "a non-negative number of ms")
        self.min_repeats = min_repeats
        self.min_total_ms = min_total_ms
        self.max_findings = max_findings
        self.routes: dict[str, RouteQueries] = {}
        self.findings: OrderedDict[tuple[str, str], NPlusOne] = OrderedDict()

    def report(self) -> dict[str, Any]:
        """JSON-ready figures: per route and the N+1 findings (shapes only, no values)."""
        routes = {}
        for route, stats in sorted(self.routes.items()):
            p95 = stats.per_request.quantile(0.95)
            routes[route] = {
                "requests": stats.requests,
                "queries": stats.queries,
                "queries_per_request": round(stats.queries / stats.requests, 2)
                if stats.requests
                else 0.0,
                "max_queries": stats.max_queries,
                "query_ms_p95": None if p95 is None else round(p95 * 1000, 3),
            }
        findings = [
            {"route": f.route, "shape": f.shape, "fingerprint": f.fingerprint,
             "repeats": f.repeats, "total_ms": f.total_ms, "occurrences": f.occurrences}
            for f in self.findings.values()
        ]  # fmt: skip
        return {"routes": routes, "n_plus_one": findings}

    def finish(self, route: str, queries: RequestQueries) -> list[NPlusOne]:
        """Fold one request's statements in; return the N+1 patterns it showed."""
        stats = self.routes.get(route)
        if stats is None:
            stats = self.routes[route] = RouteQueries()
        stats.requests += 1
        stats.queries += queries.count
        stats.max_queries = max(stats.max_queries, queries.count)
        stats.per_request.add(queries.seconds)
        found: list[NPlusOne] = []
        for fp, (repeats, seconds, sql) in queries.seen.items():
            total_ms = seconds * 1000
            if repeats < self.min_repeats or total_ms < self.min_total_ms:
                continue
            key = (route, fp)
            finding = self.findings.get(key)
            if finding is None:
                finding = NPlusOne(route, fp, shape(sql), repeats, round(total_ms, 2))
                self.findings[key] = finding
                while len(self.findings) > self.max_findings:
                    self.findings.popitem(last=False)
            else:
                finding.occurrences += 1
                finding.repeats = max(finding.repeats, repeats)
                finding.total_ms = max(finding.total_ms, round(total_ms, 2))
                finding.last_seen = time.time()
            found.append(finding)
        return found


class TimedConnection:
    """An asyncpg connection (or pool proxy) that records every statement it runs into
    a `RequestQueries` — two clock reads and a dict update per statement, on the
    caller's task (asyncpg's query-logger hook delivers records later, via call_soon).
    `make bench-nplusone` measures its cost."""

    __slots__ = ("_conn", "_queries")

    def __init__(self, conn: Any, queries: RequestQueries) -> None:
        self._conn = conn
        self._queries = queries

    async def _timed(self, method: str, text: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await getattr(self._conn, method)(*args, **kwargs)
        finally:
            self._queries.add(text, time.perf_counter() - started)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._timed("fetch", query, query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._timed("fetchrow", query, query, *args, **kwargs)

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._timed("fetchval", query, query, *args, **kwargs)

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._timed("execute", query, query, *args, **kwargs)

    async def executemany(self, command: str, args: Any, **kwargs: Any) -> Any:
        return await self._timed("executemany", command, command, args, **kwargs)

    async def copy_records_to_table(self, table_name: str, **kwargs: Any) -> Any:
        text = f"COPY {table_name} FROM STDIN"
        return await self._timed("copy_records_to_table", text, table_name, **kwargs)

    def __getattr__(self, name: str) -> Any:  # transaction(), is_closed(), …
        return getattr(self._conn, name)
