"""The jobs lock on PostgreSQL: one holder at a time, held (not re-won) for as long as its session lives, handed
over when the holder releases it or its connection is cut, and never believed by a holder that lost it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from integrations.db.lease import APPLICATION_PREFIX, AdvisoryLock, SingleProcess


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture
async def locks(pg_url: str) -> AsyncIterator[list[AdvisoryLock]]:
    """Replicas a, b, c contending for a lock of their own (names differ per test: the database is shared)."""
    name = f"scheduler-{uuid.uuid4().hex[:8]}"
    made = [AdvisoryLock(pg_url, name, f"replica-{x}-{name}", retry_s=0.2) for x in "abc"]
    yield made
    for lock in made:
        await lock.release()


async def cut(pg_url: str, holder: str) -> int:
    """pg_terminate_backend on the holder's lock connection, as a failing network or an admin would."""
    conn = await asyncpg.connect(dsn(pg_url))
    try:
        return len(await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            APPLICATION_PREFIX + holder))
    finally:
        await conn.close()


async def test_one_holder_and_it_keeps_the_lock_without_renewing(locks: list[AdvisoryLock]) -> None:
    a, b, c = locks
    won = await asyncio.gather(*(lock.try_acquire() for lock in locks))
    assert sum(won) == 1
    holder = locks[won.index(True)]
    await asyncio.sleep(1.0)  # no heartbeat, no renewal: the session holds it
    assert await holder.holds()
    assert [await lock.holds() for lock in locks] == won
    assert not any([await lock.try_acquire() for lock in locks if lock is not holder])
    assert await holder.try_acquire()  # the holder's own try is a check, and it still holds


async def test_release_hands_over_at_once(locks: list[AdvisoryLock]) -> None:
    a, b, _ = locks
    assert await a.try_acquire()
    assert not await b.try_acquire()
    await a.release()
    assert not await a.holds()
    assert await b.try_acquire() and await b.holds()


async def test_a_holder_whose_connection_is_cut_stops_and_another_takes_over(
    pg_url: str, locks: list[AdvisoryLock], caplog: pytest.LogCaptureFixture
) -> None:
    a, b, _ = locks
    assert await a.try_acquire()
    assert await cut(pg_url, a.holder) == 1
    # the server freed the lock with the session: b gets it without waiting for any expiry
    for _ in range(50):
        if await b.try_acquire():
            break
        await asyncio.sleep(0.1)
    assert await b.holds()
    assert not await a.holds()  # asked before its next tick, a learns it lost the lock
    assert "lost the jobs lock" in caplog.text
    assert not await a.try_acquire()  # and b keeps it


async def test_a_follower_keeps_trying_and_wins_when_the_holder_goes(locks: list[AdvisoryLock]) -> None:
    a, b, _ = locks
    assert await a.try_acquire()
    trying = asyncio.create_task(b.run())
    try:
        await asyncio.sleep(0.5)
        assert not await b.holds()
        await a.release()
        for _ in range(50):
            if await b.holds():
                break
            await asyncio.sleep(0.1)
        assert await b.holds()
    finally:
        trying.cancel()


async def test_an_unreachable_database_is_not_leadership(caplog: pytest.LogCaptureFixture) -> None:
    lock = AdvisoryLock("postgresql+asyncpg://postgres@127.0.0.1:1/none", "scheduler", "lonely", check_timeout_s=2)
    assert not await lock.try_acquire()
    assert not await lock.holds()
    caplog.set_level("DEBUG", logger="integrations.db.lease")
    assert not await lock.try_acquire()
    # an outage does not flood the log: the first failure at WARNING, the rest at DEBUG
    assert [r.levelname for r in caplog.records if "cannot reach" in r.message] == ["WARNING", "DEBUG"]
    await lock.release()


async def test_sqlite_is_one_process_and_always_leads() -> None:
    single = SingleProcess("demo")
    assert await single.holds()
    await single.release()
