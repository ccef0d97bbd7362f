"""Deterministic, realistic WedSync data: `seed(conn, scale=1, seed=7)`.

At scale 1: 20,000 suppliers, 2,000 venues, 50,000 couples and weddings over three
years (about 10x more per month in May–October than in winter, most on Saturdays, a
few on Fridays and Sundays), their bookings, vendor lists and 10–30-item timelines.
Everything derives from `seed`, so the same arguments give the same rows, IDs included.

The whole load is one transaction and starts by claiming the single `seed_runs` row, so
a second seed into the same database fails loudly instead of doubling the data, and an
interrupted seed leaves nothing behind.
"""

from __future__ import annotations

import hmac
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from typing import Any

import asyncpg

from wedsync_api.auth import hash_key
from wedsync_api.models import CATEGORIES
from wedsync_perf.errors import WedsyncPerfError

__all__ = [
    "AlreadySeededError",
    "SeedPlan",
    "dataset_checksums",
    "demo_api_key",
    "is_seeded",
    "seed",
]

ProgressFn = Callable[[str, int], None]

# (region, centre lat, centre lon)
REGIONS = (
    ("london", 51.507, -0.128),
    ("south_east", 51.27, -0.52),
    ("south_west", 50.96, -3.22),
    ("east", 52.24, 0.41),
    ("midlands", 52.49, -1.89),
    ("north_west", 53.48, -2.24),
    ("yorkshire", 53.96, -1.08),
    ("north_east", 54.97, -1.61),
    ("wales", 51.48, -3.18),
    ("scotland", 55.95, -3.19),
    ("cotswolds", 51.83, -1.84),
    ("lake_district", 54.46, -3.09),
)
MONTH_WEIGHT = (1.0, 1.0, 1.5, 3.0, 8.0, 10.0, 10.0, 10.0, 10.0, 8.0, 1.5, 1.0)
WEEKDAY_WEIGHT = (0.3, 0.3, 0.4, 0.8, 10.0, 80.0, 7.0)  # Monday … Sunday
TIMELINE_TITLES = (
    "Hair and makeup begins", "Florist delivers bouquets", "Photographer arrives",
    "Videographer arrives", "Venue dressing", "Groom preparations", "Bride preparations",
    "Guests arrive", "Ceremony", "Signing of the register", "Confetti", "Group photos",
    "Drinks reception", "Canapés served", "Couple portraits", "Call to breakfast",
    "Wedding breakfast", "Speeches", "Cake cutting", "First dance", "Band set one",
    "Evening guests arrive", "Evening food", "Band set two", "DJ set", "Sparkler exit",
    "Last orders", "Carriages", "Venue clear-down", "Supplier collection",
)  # fmt: skip
FIRST_NAMES = (
    "Alex", "Sam", "Jordan", "Charlie", "Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy",
    "Noah", "Oliver", "George", "Arthur", "Leo", "Harry", "Freya", "Grace", "Ella", "Lily",
    "Jack", "Theo", "Oscar", "Archie", "Rosie", "Evie", "Ruby", "Sophie", "Ben", "Finn",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Wood", "Jackson", "Clarke", "Khan", "Hughes", "Edwards", "Lewis", "Turner", "Hill",
)  # fmt: skip
NAME_WORDS = (
    "Golden", "Oak", "Willow", "Rose", "Ivory", "Meadow", "Silver", "Lark", "Bramble",
    "Harbour", "Juniper", "Velvet", "Honey", "Fern", "Linen", "Amber", "Heather", "Orchard",
)  # fmt: skip
SERVICES = {
    "photographer": ("full day", "half day", "drone", "album", "engagement shoot"),
    "videographer": ("highlight film", "full film", "drone", "same-day edit"),
    "florist": ("bouquets", "buttonholes", "arch", "table centres", "installations"),
    "caterer": ("wedding breakfast", "canapés", "evening food", "vegan menu", "bar"),
    "band": ("ceremony music", "evening sets", "acoustic", "ceilidh"),
    "dj": ("evening set", "lighting", "uplighting", "sound system"),
    "cake": ("tiered cake", "cupcakes", "dessert table", "gluten free"),
    "hair_makeup": ("bridal hair", "bridal makeup", "trials", "party styling"),
    "officiant": ("civil ceremony", "humanist ceremony", "vow renewal"),
    "planner": ("full planning", "on-the-day coordination", "destination"),
    "transport": ("vintage car", "coach", "horse and carriage"),
    "stationery": ("invitations", "table plan", "place cards", "signage"),
}
BASE_SCALE = {"suppliers": 20_000, "venues": 2_000, "weddings": 50_000, "tenants": 40}
TABLES = (
    "tenants", "api_keys", "suppliers", "venues", "couples", "weddings", "venue_bookings",
    "wedding_suppliers", "timeline_items", "checkins", "messages", "imports",
)  # fmt: skip


class AlreadySeededError(WedsyncPerfError):
    """The database already holds seed data; reseeding needs an explicit `force`."""

    http_status = 409


@dataclass(frozen=True)
class SeedPlan:
    """Row counts for a scale; `scale` may be fractional for fast tests."""

    scale: float
    seed: int = 7
    first_year: int = 2025

    def __post_init__(self) -> None:
        if not 0 < self.scale <= 20:
            raise ValueError(f"scale must be in (0, 20], got {self.scale}")

    def count(self, what: str) -> int:
        minimum = 2 if what == "tenants" else 10
        return max(minimum, round(BASE_SCALE[what] * self.scale))


def demo_api_key(seed: int, tenant_id: int) -> str:
    """The API key the seed issues to a tenant. Derived from the seed so the demo's load
    driver can use it: seed data is demo data, never a production database."""
    digest = hmac.new(f"wedsync-demo-{seed}".encode(), str(tenant_id).encode(), "sha256")
    return "wsk_demo_" + digest.hexdigest()[:32]


async def is_seeded(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM seed_runs)"))


async def seed(
    conn: asyncpg.Connection,
    plan: SeedPlan,
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> dict[str, int]:
    """Load the dataset described by `plan`; return rows written per table.

    Raises `AlreadySeededError` if the database was seeded before and `force` is False;
    with `force`, every WedSync table is emptied first (in the same transaction).
    """
    step: ProgressFn = progress or (lambda _what, _n: None)
    rng = random.Random(plan.seed)
    async with conn.transaction():
        if force:
            await conn.execute(f"TRUNCATE {', '.join(TABLES)}, seed_runs RESTART IDENTITY CASCADE")
        else:
            await conn.execute("LOCK TABLE seed_runs IN EXCLUSIVE MODE")
            previous = await conn.fetchrow("SELECT seed, scale, finished_at FROM seed_runs")
            if previous is not None:
                raise AlreadySeededError(
                    f"database already seeded (seed={previous['seed']}, scale={previous['scale']},"
                    f" at {previous['finished_at']:%Y-%m-%d %H:%M}); pass --force to wipe and reseed"
                )
            if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM suppliers)"):
                raise AlreadySeededError(
                    "database holds suppliers that no seed wrote; refusing to mix demo data into it"
                )
        await conn.execute(
            "INSERT INTO seed_runs (id, seed, scale) VALUES (1, $1, $2)", plan.seed, plan.scale
        )
        counts = await _load(conn, plan, rng, step)
        await conn.execute("UPDATE seed_runs SET finished_at = now()")
    await conn.execute("ANALYZE")
    return counts


async def _copy(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: list[Any]
) -> int:
    await conn.copy_records_to_table(table, records=rows, columns=list(columns))
    return len(rows)


async def _load(
    conn: asyncpg.Connection, plan: SeedPlan, rng: random.Random, step: ProgressFn
) -> dict[str, int]:
    counts: dict[str, int] = {}
    n_tenants = plan.count("tenants")
    tenant_ids = list(range(1, n_tenants + 1))
    # Zipf-like account sizes: a few large planners, a long tail of small businesses.
    tenant_cum = list(accumulate(1.0 / (i**0.8) for i in tenant_ids))

    def pick_tenant() -> int:
        return rng.choices(tenant_ids, cum_weights=tenant_cum)[0]

    tenants = [(t, f"Tenant {t}", "planner" if t % 3 else "supplier_business") for t in tenant_ids]
    counts["tenants"] = await _copy(conn, "tenants", ("id", "name", "kind"), tenants)
    keys = [(hash_key(demo_api_key(plan.seed, t)), t, "demo") for t in tenant_ids]
    counts["api_keys"] = await _copy(conn, "api_keys", ("key_hash", "tenant_id", "label"), keys)
    step("tenants", 1)

    suppliers: list[tuple[Any, ...]] = []
    by_tenant: dict[int, list[tuple[int, str]]] = {t: [] for t in tenant_ids}
    for sid in range(1, plan.count("suppliers") + 1):
        tenant = pick_tenant()
        category = CATEGORIES[rng.randrange(len(CATEGORIES))]
        region, lat, lon = REGIONS[rng.randrange(len(REGIONS))]
        services = SERVICES[category]
        suppliers.append((
            sid, tenant,
            f"{rng.choice(NAME_WORDS)} {rng.choice(NAME_WORDS)} {category.replace('_', ' ').title()}",
            category, region,
            round(lat + rng.gauss(0, 0.25), 5), round(lon + rng.gauss(0, 0.35), 5),
            round(rng.triangular(2.5, 5.0, 4.6), 1), rng.choice((1, 2, 2, 3, 3, 4)),
            rng.sample(services, rng.randint(1, len(services))),
            f"hello@supplier{sid}.example", f"+44 7700 9{sid % 100000:05d}",
        ))  # fmt: skip
        by_tenant[tenant].append((sid, category))
    counts["suppliers"] = await _copy(
        conn, "suppliers",
        ("id", "tenant_id", "name", "category", "region", "lat", "lon", "rating", "price_band",
         "services", "email", "phone"),
        suppliers,
    )  # fmt: skip
    step("suppliers", 1)

    venues: list[tuple[Any, ...]] = []
    venues_of: dict[int, list[int]] = {t: [] for t in tenant_ids}
    for vid in range(1, plan.count("venues") + 1):
        tenant = pick_tenant()
        region, lat, lon = REGIONS[rng.randrange(len(REGIONS))]
        venues.append((
            vid, tenant, f"{rng.choice(NAME_WORDS)} {rng.choice(('Hall', 'Barn', 'Manor', 'House'))}",
            region, round(lat + rng.gauss(0, 0.25), 5), round(lon + rng.gauss(0, 0.35), 5),
            rng.choice((60, 80, 120, 150, 200, 250)), rng.randint(1, 4),
        ))  # fmt: skip
        venues_of[tenant].append(vid)
    counts["venues"] = await _copy(
        conn, "venues",
        ("id", "tenant_id", "name", "region", "lat", "lon", "capacity", "price_band"), venues,
    )  # fmt: skip
    step("venues", 1)

    first, end = date(plan.first_year, 1, 1), date(plan.first_year + 3, 1, 1)
    days = [first + timedelta(days=i) for i in range((end - first).days)]
    day_cum = list(
        accumulate(MONTH_WEIGHT[d.month - 1] * WEEKDAY_WEIGHT[d.weekday()] for d in days)
    )
    couples: list[tuple[Any, ...]] = []
    weddings: list[tuple[Any, ...]] = []
    bookings: list[tuple[Any, ...]] = []
    booked_days: set[tuple[int, date]] = set()
    vendor_rows: list[tuple[Any, ...]] = []
    for wid in range(1, plan.count("weddings") + 1):
        tenant = pick_tenant()
        day = rng.choices(days, cum_weights=day_cum)[0]
        couples.append((
            wid, tenant,
            f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            f"couple{wid}@example.invalid",
        ))  # fmt: skip
        venue_id = None
        for candidate in rng.sample(venues_of[tenant], min(3, len(venues_of[tenant]))):
            if (candidate, day) not in booked_days:
                venue_id = candidate
                booked_days.add((candidate, day))
                bookings.append((wid, tenant, candidate, day, wid))
                break
        status = rng.choices(("confirmed", "planned", "cancelled"), (85, 10, 5))[0]
        weddings.append((wid, tenant, wid, venue_id, day, rng.randint(30, 220), status))
        pool = by_tenant[tenant]
        chosen: dict[str, int] = {}
        wanted = rng.randint(4, 10)
        for sid, category in rng.sample(pool, min(len(pool), 12)):
            chosen.setdefault(category, sid)
            if len(chosen) >= wanted:
                break
        vendor_rows.extend((tenant, wid, sid, category) for category, sid in chosen.items())
    counts["couples"] = await _copy(
        conn, "couples", ("id", "tenant_id", "partner_a", "partner_b", "email"), couples
    )
    counts["weddings"] = await _copy(
        conn, "weddings",
        ("id", "tenant_id", "couple_id", "venue_id", "wedding_date", "guest_count", "status"),
        weddings,
    )  # fmt: skip
    counts["venue_bookings"] = await _copy(
        conn, "venue_bookings", ("id", "tenant_id", "venue_id", "day", "wedding_id"), bookings
    )
    counts["wedding_suppliers"] = await _copy(
        conn, "wedding_suppliers", ("tenant_id", "wedding_id", "supplier_id", "role"), vendor_rows
    )
    step("weddings", 1)

    # Timelines are derived in SQL from each wedding's id: 10–30 items, deterministic,
    # and about ten times faster than shipping a million rows from Python.
    counts["timeline_items"] = int(
        (
            await conn.execute(
                """INSERT INTO timeline_items
                       (tenant_id, wedding_id, starts_at, ends_at, title, location)
                   SELECT w.tenant_id, w.id,
                          w.wedding_date + time '08:00' + (n - 1) * interval '30 minutes',
                          w.wedding_date + time '08:00' + n * interval '30 minutes',
                          ($1::text[])[1 + ((n - 1) * 30 / k)],
                          CASE WHEN n % 3 = 0 THEN 'Main hall' ELSE 'Grounds' END
                   FROM weddings w,
                        LATERAL (SELECT 10 + (w.id * 7919) % 21 AS k) AS shape,
                        LATERAL generate_series(1, shape.k) AS n
                   ORDER BY w.id, n""",
                list(TIMELINE_TITLES),
            )
        ).split()[-1]
    )
    step("timelines", 1)
    for table in ("suppliers", "venues", "couples", "weddings", "venue_bookings"):
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
            f" (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
        )
    return counts


# Columns set by now() differ between runs by design; everything else must match.
_VOLATILE = {"created_at", "finished_at", "started_at", "arrived_at"}


async def dataset_checksums(conn: asyncpg.Connection) -> dict[str, str]:
    """MD5 per table over every non-time-stamp column, rows in key order."""
    sums: dict[str, str] = {}
    for table in TABLES:
        columns = [
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                table,
            )
            if r["column_name"] not in _VOLATILE
        ]
        cols = ", ".join(columns)
        sums[table] = await conn.fetchval(
            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
            f" FROM (SELECT {cols} FROM {table}) AS t"
        )
    return sums
