"""The scheduler lease, on SQLite and PostgreSQL: one holder at a time, stolen only once expired."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from integrations.db.engine import Database
from integrations.db.lease import Lease

T0 = datetime(2026, 2, 6, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def pair(db: Database, clock: Clock) -> tuple[Lease, Lease]:
    ttl = timedelta(seconds=90)
    return Lease(db, "scheduler", "replica-a", ttl=ttl, clock=clock), Lease(db, "scheduler", "replica-b", ttl=ttl, clock=clock)


async def test_one_holder_until_the_lease_expires(db: Database) -> None:
    clock = Clock()
    a, b = pair(db, clock)
    assert await a.acquire()
    assert not await b.acquire()
    clock.now += timedelta(seconds=60)
    assert await a.acquire()  # the holder renews by acquiring again
    clock.now += timedelta(seconds=60)
    assert not await b.acquire()  # renewed 60 s ago: still a's
    assert await a.current() == ("replica-a", T0 + timedelta(seconds=150))
    clock.now += timedelta(seconds=31)
    assert await b.acquire()  # a stopped renewing: b steals the expired row
    assert not await a.renew()
    assert not await a.acquire()


async def test_release_hands_over_at_once(db: Database) -> None:
    clock = Clock()
    a, b = pair(db, clock)
    assert await a.acquire()
    await b.release()  # not b's to release
    assert not await b.acquire()
    await a.release()
    assert await b.acquire()
    assert await b.renew()


async def test_concurrent_acquire_has_one_winner(db: Database) -> None:
    clock = Clock()
    leases = [Lease(db, "scheduler", f"replica-{i}", ttl=timedelta(seconds=90), clock=clock) for i in range(8)]
    won = await asyncio.gather(*(lease.acquire() for lease in leases))
    assert sum(won) == 1
