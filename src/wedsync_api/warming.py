"""Cache warming before a wedding day: timelines, vendor lists and wedding details of
that day's weddings, and the profiles of their suppliers — through the very loaders the
routes use, stored by the HTTP response cache under each route's own cache rule, so a
warmed entry is exactly what a request would have cached.

Rate-limited (a fixed pace and a small concurrency), so warming never competes with
live traffic for the pool; entries already cached are left alone (a warm run after a
warm run loads nothing). The report counts only what the cache holds afterwards; an
entry the cache would not take (a sensitive data class and no keyring, an oversized
one) is counted as skipped, with the reason — and one the cache never takes is not
even loaded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from wedsync_api.reads import load_supplier, load_timeline, load_vendors, load_wedding
from wedsync_perf.caching import StoreOutcome
from wedsync_perf.caching.http import ResponseCache
from wedsync_perf.database import LanedPool
from wedsync_perf.pipeline import RouteTable
from wedsync_perf.priorities import PriorityClass

__all__ = ["WarmReport", "plan_day", "warm_day"]


@dataclass
class WarmReport:
    day: date
    weddings: int = 0
    entries: int = 0  # planned
    loaded: int = 0  # loaded and stored by this run
    cached: int = 0  # cached already
    failed: int = 0
    seconds: float = 0.0
    by_class: dict[str, int] = field(default_factory=dict)  # in the cache afterwards
    skipped: dict[str, int] = field(default_factory=dict)  # "data_class: reason" → count

    def skip(self, data_class: str, reason: str) -> None:
        what = f"{data_class}: {reason}"
        self.skipped[what] = self.skipped.get(what, 0) + 1


@dataclass(frozen=True)
class _Job:
    tenant_id: int
    kind: str
    ident: int


# Every tenant's weddings of one day: the warmer's one cross-tenant query.
WARMING_SQL = (
    "SELECT w.tenant_id, w.id, array_agg(ws.supplier_id) FILTER"
    " (WHERE ws.supplier_id IS NOT NULL) AS suppliers FROM weddings w"
    " LEFT JOIN wedding_suppliers ws ON ws.wedding_id = w.id"
    " WHERE w.wedding_date = $1 AND w.status <> 'cancelled' GROUP BY w.tenant_id, w.id"
    " ORDER BY w.tenant_id, w.id"
)


async def plan_day(pool: LanedPool, day: date) -> tuple[int, list[_Job]]:
    """The entries to warm for `day`: per wedding (not cancelled) its timeline, vendors
    and details; each booked supplier's profile once."""
    rows = await pool.fetch(WARMING_SQL, day, priority=PriorityClass.BULK)
    jobs: list[_Job] = []
    suppliers: set[tuple[int, int]] = set()
    for row in rows:
        tenant, wedding = row["tenant_id"], row["id"]
        jobs += [_Job(tenant, kind, wedding) for kind in ("timeline", "vendors", "wedding")]
        suppliers.update((tenant, s) for s in row["suppliers"] or ())
    jobs += [_Job(tenant, "supplier", s) for tenant, s in sorted(suppliers)]
    return len(rows), jobs


# What each job warms: the path a request would ask for, and the loader its route uses.
_SPECS = {
    "timeline": ("/weddings/{}/timeline", load_timeline),
    "vendors": ("/weddings/{}/vendors", load_vendors),
    "wedding": ("/weddings/{}", load_wedding),
    "supplier": ("/suppliers/{}", load_supplier),
}


async def warm_day(
    pool: LanedPool,
    responses: ResponseCache,
    routes: RouteTable,
    day: date,
    *,
    rate_per_s: float = 200.0,
    concurrency: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> WarmReport:
    """Warm `day`: each entry loaded through `pool` and stored by `responses` under the
    cache rule `routes` gives its path. At most `concurrency` loads at once, started at most `rate_per_s`
    per second; `progress(done, total)` after each entry."""
    if rate_per_s <= 0 or concurrency < 1:
        raise ValueError("rate_per_s must be positive and concurrency at least 1")
    started = time.monotonic()
    report = WarmReport(day)
    report.weddings, jobs = await plan_day(pool, day)
    report.entries = len(jobs)
    gate = asyncio.Semaphore(concurrency)
    interval = 1.0 / rate_per_s
    next_start = time.monotonic()
    done = 0

    async def run(job: _Job) -> None:
        nonlocal done
        template, loader = _SPECS[job.kind]
        path = template.format(job.ident)
        found = routes.match("GET", path)
        if found is None or found[0].cache is None:
            raise LookupError(f"GET {template} is not a cached route of the app")
        route, params = found
        data_class = found[0].cache.data_class
        refused = responses.cache.refuses(data_class)
        try:
            async with gate:
                if refused is not None:
                    outcome = refused  # never stored: not worth a load
                elif await responses.has(job.tenant_id, route, path):
                    outcome = None
                else:
                    async with pool.acquire(PriorityClass.BULK) as conn:
                        model = await loader(conn, job.tenant_id, job.ident)
                    body = model.model_dump_json().encode()
                    outcome = await responses.fill(job.tenant_id, route, params, path, body)
        except Exception:  # one bad wedding must not stop the warm-up of the others
            report.failed += 1
        else:
            if outcome is None or outcome is StoreOutcome.STORED:
                report.loaded += outcome is not None
                report.cached += outcome is None
                report.by_class[data_class] = report.by_class.get(data_class, 0) + 1
            else:
                report.skip(data_class, outcome.value)
        done += 1
        if progress is not None:
            progress(done, len(jobs))

    tasks = []
    for job in jobs:
        delay = next_start - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing: a rate limit, not a synchronisation
        next_start = max(next_start + interval, time.monotonic())
        tasks.append(asyncio.create_task(run(job)))
    await asyncio.gather(*tasks)
    report.seconds = time.monotonic() - started
    return report
