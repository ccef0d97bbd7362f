"""N+1 detection through SQLAlchemy 2's AsyncSession (asyncpg driver) on the seeded
database: a relationship loaded per wedding is flagged, `selectinload` is not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import ForeignKey, select
from sqlalchemy.ext.asyncio import AsyncAttrs, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from wedsync_perf.database.queries import QueryTracker
from wedsync_perf.database.sqla import collecting, instrument_engine

pytestmark = pytest.mark.integration


class Base(AsyncAttrs, DeclarativeBase):
    pass


class Wedding(Base):
    __tablename__ = "weddings"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int]
    items: Mapped[list[TimelineItem]] = relationship(back_populates="wedding")


class TimelineItem(Base):
    __tablename__ = "timeline_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    wedding_id: Mapped[int] = mapped_column(ForeignKey("weddings.id"))
    starts_at: Mapped[datetime]
    title: Mapped[str]
    wedding: Mapped[Wedding] = relationship(back_populates="items")


@pytest.fixture
async def engine(seeded_dsn: str) -> AsyncIterator[AsyncEngine]:
    url = seeded_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    created = create_async_engine(url)
    instrument_engine(created)
    instrument_engine(created)  # idempotent: statements are not counted twice
    yield created
    await created.dispose()


async def test_per_row_relationship_loads_are_flagged(engine: AsyncEngine) -> None:
    tracker = QueryTracker(min_repeats=5, min_total_ms=0)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session:
        with collecting(tracker, "/weddings") as queries:
            weddings = (await session.scalars(select(Wedding).limit(8))).all()
            for wedding in weddings:
                await wedding.awaitable_attrs.items  # one SELECT per wedding: N+1
    assert queries.count == 9
    assert [f.route for f in tracker.findings.values()] == ["/weddings"]
    (finding,) = tracker.findings.values()
    assert finding.repeats == 8
    assert "timeline_items" in finding.shape
    assert "$1" in finding.shape  # a placeholder, never the values
    assert all(f"({w.id} AS" not in finding.shape for w in weddings)


async def test_selectinload_is_one_statement_and_never_flagged(engine: AsyncEngine) -> None:
    tracker = QueryTracker(min_repeats=5, min_total_ms=0)
    sessions = async_sessionmaker(engine)
    async with sessions() as session:
        with collecting(tracker, "/weddings") as queries:
            query = select(Wedding).options(selectinload(Wedding.items)).limit(8)
            weddings = (await session.scalars(query)).all()
    assert sum(len(w.items) for w in weddings) > 0
    assert queries.count == 2  # the weddings, then all their items in one IN (...)
    assert not tracker.findings
    assert tracker.routes["/weddings"].requests == 1


async def test_statements_outside_a_request_are_not_collected(engine: AsyncEngine) -> None:
    tracker = QueryTracker(min_repeats=2, min_total_ms=0)
    sessions = async_sessionmaker(engine)
    async with sessions() as session:
        for _ in range(3):
            await session.scalar(select(Wedding.id).limit(1))
        with collecting(tracker, "/quiet") as queries:
            pass
    assert queries.count == 0
    assert not tracker.findings
