"""The inbox lease: a row under way in a live process (its heartbeat renewed) is nobody else's; a row whose
process lapsed is taken by exactly one sweeper, however many rows there are and however new or old they are."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.inbox_writer import InboxWriter
from integrations.db.uow import UnitOfWork
from tests.integration.helpers import rows

LEASE = timedelta(seconds=15)


async def store(db: Database, ids: list[str], at: datetime, holder: str | None = "A") -> None:
    writer = InboxWriter(db, holder=holder, lease_s=LEASE.total_seconds())
    await asyncio.gather(*(writer.record("wecom", i, {"message_id": i}, at) for i in ids))


async def claim(db: Database, holder: str, now: datetime, limit: int = 1000) -> list[str]:
    async with UnitOfWork(db) as uow:
        found = await uow.inbox.claim_free(holder, now, now + LEASE, limit=limit, max_attempts=5)
        await uow.commit()
    return [r["message_id"] for r in found]


async def inbox_rows(db: Database) -> dict[str, dict[str, Any]]:
    return {r["message_id"]: r for r in await rows(db, t.inbound_messages)}


async def test_a_row_under_way_is_not_taken_and_a_lapsed_one_is_taken_once(db: Database) -> None:
    now = utcnow()
    await store(db, ["m1", "m2"], now)
    assert await claim(db, "B", now + timedelta(seconds=5)) == []  # A has them queued: its lease holds
    later = now + LEASE + timedelta(seconds=1)  # A died: nobody renewed
    assert sorted(await claim(db, "B", later)) == ["m1", "m2"]
    assert await claim(db, "C", later) == []  # B's lease now
    async with UnitOfWork(db) as uow:  # A, back from a pause, does not take them back
        await uow.inbox.renew("A", later + LEASE)
        await uow.commit()
    found = await inbox_rows(db)
    assert [(r["claimed_by"], r["attempts"]) for r in found.values()] == [("B", 1), ("B", 1)]


async def test_renewal_keeps_a_row_from_the_sweep_while_its_process_lives(db: Database) -> None:
    now = utcnow()
    await store(db, ["m1"], now)
    for step in range(1, 5):  # the holder renews every 10 s; the 15 s lease never lapses
        at = now + timedelta(seconds=10 * step)
        async with UnitOfWork(db) as uow:
            await uow.inbox.renew("A", at + LEASE)
            await uow.commit()
        assert await claim(db, "B", at + timedelta(seconds=1)) == []


async def test_two_sweepers_at_once_take_every_lapsed_row_exactly_once(db: Database) -> None:
    now = utcnow()
    ids = [f"m{i:03d}" for i in range(120)]
    await store(db, ids, now)
    later = now + LEASE + timedelta(seconds=1)
    taken: list[str] = []
    for _ in range(20):  # 25 a sweep each: no sweep takes them all, the sweeps together do (SQLite's one
        # writer may make a sweep find the rows busy and take none this round; the next round takes them)
        first, second = await asyncio.gather(claim(db, "B", later, 25), claim(db, "C", later, 25))
        assert not set(first) & set(second)
        taken += first + second
        if len(taken) >= len(ids):
            break
    assert sorted(taken) == ids
    assert {r["attempts"] for r in (await inbox_rows(db)).values()} == {1}


async def test_no_age_or_size_cap_leaves_a_row_behind(db: Database) -> None:
    """Rows stored a second ago and a week ago, leased or never leased (stored before the lease existed)."""
    now = utcnow()
    await store(db, [f"old{i}" for i in range(150)], now - timedelta(days=7))
    await store(db, [f"new{i}" for i in range(150)], now - timedelta(seconds=1), holder=None)
    taken: list[str] = []
    while batch := await claim(db, "B", now, limit=100):
        taken += batch
    assert len(taken) == 300 and len(set(taken)) == 300
    assert set(taken[:150]) == {f"old{i}" for i in range(150)}  # oldest first


async def test_exhausted_rows_are_parked_by_one_sweeper_only(db: Database) -> None:
    now = utcnow()
    await store(db, ["m1", "m2"], now)
    later = now + LEASE + timedelta(seconds=1)

    async def park(at: datetime) -> list[str]:
        async with UnitOfWork(db) as uow:
            dead = await uow.inbox.park_exhausted(at, max_attempts=1)
            await uow.commit()
        return [r["message_id"] for r in dead]

    assert sorted(await claim(db, "B", later)) == ["m1", "m2"]  # attempt 1 of 1, and B "dies"
    again = later + LEASE + timedelta(seconds=1)
    first, second = await asyncio.gather(park(again), park(again))
    assert sorted(first + second) == ["m1", "m2"]
    assert await claim(db, "C", again + LEASE * 2) == []
    assert all(r["parked_at"] is not None for r in (await inbox_rows(db)).values())


async def test_a_resent_copy_is_acknowledged_while_its_first_copy_is_being_handled(db: Database) -> None:
    """A platform re-send (perhaps through another replica) of a message whose unit of work is still open is
    answered at once as a duplicate, not after that unit of work ends; the batch it shares is not held."""
    if db.is_sqlite:
        pytest.skip("SQLite has one writer: any second write waits for the first")
    now = utcnow()
    await store(db, ["m1"], now)
    async with UnitOfWork(db) as handling:  # the first copy's unit of work: claimed, not yet committed
        assert await handling.inbox.claim("wecom", "m1", now)
        writer = InboxWriter(db, holder="B", lease_s=15)
        copies = await asyncio.wait_for(asyncio.gather(
            writer.record("wecom", "m1", {}, now), writer.record("wecom", "m2", {}, now)
        ), timeout=5)
        assert copies == [False, True]
        await handling.commit()


async def test_renewal_writes_one_row_and_holds_up_no_message(db: Database) -> None:
    """However long the queue, renewing is one heartbeat row: no queued message is locked or rewritten, so a
    unit of work claiming one of them meanwhile goes straight on."""
    now = utcnow()
    ids = [f"m{i:03d}" for i in range(300)]
    await store(db, ids, now)
    before = await inbox_rows(db)
    if db.is_sqlite:
        async with UnitOfWork(db) as uow:
            await uow.inbox.renew("A", now + LEASE * 2)
            await uow.commit()
    else:
        async with UnitOfWork(db) as renewing:  # the sweep's transaction, still open
            await renewing.inbox.renew("A", now + LEASE * 2)
            async with UnitOfWork(db) as handling:
                assert await asyncio.wait_for(handling.inbox.claim("wecom", "m007", now), timeout=5)
                await handling.commit()
            await renewing.commit()
    after = await inbox_rows(db)
    assert {k: r for k, r in after.items() if k != "m007"} == {k: r for k, r in before.items() if k != "m007"}
    assert [(r["holder"]) for r in await rows(db, t.inbox_holders)] == ["A"]
    assert await claim(db, "B", now + LEASE + timedelta(seconds=1)) == []  # renewed: A still has them


async def test_a_stopping_process_frees_what_it_had_at_once(db: Database) -> None:
    now = utcnow()
    await store(db, ["m1", "m2"], now)
    async with UnitOfWork(db) as uow:
        await uow.inbox.release("A")
        await uow.commit()
    assert sorted(await claim(db, "B", now + timedelta(seconds=1))) == ["m1", "m2"]


async def test_rows_a_live_process_dropped_are_found_and_taken_back_by_it(db: Database) -> None:
    """A message dropped without an answer (its failure could not be recorded) would stay under a live
    heartbeat for ever; the process finds its own rows it no longer has in hand and queues them again."""
    now = utcnow()
    await store(db, ["m1", "m2", "m3"], now)
    async with UnitOfWork(db) as uow:
        assert await uow.inbox.strays("A", {("wecom", "m1"), ("wecom", "m2"), ("wecom", "m3")}, 3) == []
        lost = await uow.inbox.strays("A", {("wecom", "m1")}, 1)
        assert sorted(lost) == [("wecom", "m2"), ("wecom", "m3")]
        await uow.inbox.free_strays(lost, "A")
        await uow.commit()
    assert sorted(await claim(db, "A", now)) == ["m2", "m3"]  # the sweep's usual way: an attempt counted
    assert {k: r["attempts"] for k, r in (await inbox_rows(db)).items()} == {"m1": 0, "m2": 1, "m3": 1}
