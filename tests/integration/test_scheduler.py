"""Two replicas (schedulers with their own jobs-lock connection) on one PostgreSQL database: every job runs once
per tick, on the holder only, and a survivor takes over within seconds when the holder goes or is cut off."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import select

from bot.scheduler import ANCHOR, JobEnv, JobScheduler, JobSpec, job_specs
from config.settings import Settings
from handlers.bootstrap import build_bus
from handlers.bus import Deps
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.lease import APPLICATION_PREFIX, AdvisoryLock

JOBS = ("logistics_sweep", "stuck_orders")


def replica(db: Database, lock_name: str, holder: str, runs: Counter[tuple[str, str]],
            every_s: float = 0.5) -> JobScheduler:
    async def job(env: JobEnv, name: str) -> str:
        runs[(name, holder)] += 1  # counted under the plain job name
        return "ok"

    specs = [JobSpec(name, "test", name, timedelta(seconds=every_s), lambda env, n=name: job(env, n)) for name in JOBS]
    # ticks are marked per job id in a database other tests share: the lock name keeps this test's ticks apart
    specs = [JobSpec(f"{s.id}-{lock_name}", s.schedule, s.description, s.every, s.run) for s in specs]
    env = JobEnv(db, build_bus(db, Deps()), Deps(), Settings(database_url=db.url), courier=None)  # type: ignore[arg-type]
    return JobScheduler(env, AdvisoryLock(db.url, lock_name, holder, retry_s=0.3), specs)


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[Database]:
    database = Database(pg_url)
    yield database
    await database.dispose()


async def until(condition: object, deadline_s: float = 20.0) -> None:
    """Poll an async predicate with a generous deadline (a loaded machine is slow, never wrong)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not await condition():  # type: ignore[operator]
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.05)


async def tick_marks(db: Database, job: str) -> list[str]:
    async with db.engine.connect() as conn:
        keys = (await conn.execute(select(t.alert_marks.c.key).where(t.alert_marks.c.key.like(f"job:{job}:%")))).scalars()
        return sorted(keys)


async def test_each_tick_runs_on_one_replica_once(pg: Database) -> None:
    runs: Counter[tuple[str, str]] = Counter()
    name = f"scheduler-{uuid.uuid4().hex[:8]}"
    a, b = replica(pg, name, "replica-a", runs), replica(pg, name, "replica-b", runs)
    assert await a.leader.try_acquire()  # type: ignore[attr-defined]
    assert not await b.leader.try_acquire()  # type: ignore[attr-defined]
    slot0 = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=uuid.uuid4().int % 10_000)
    for i in range(5):  # five ticks of each job, both replicas firing at once
        slot = slot0 + i * timedelta(seconds=1)
        sweep, stuck = (f"{job}-{name}" for job in JOBS)
        ran = await asyncio.gather(a.tick(sweep, slot), b.tick(sweep, slot), b.tick(stuck, slot), a.tick(stuck, slot))
        assert ran == [True, False, False, True]
        assert not await a.tick(stuck, slot)  # the same tick again (a late or repeated firing): skipped
    assert runs == {("logistics_sweep", "replica-a"): 5, ("stuck_orders", "replica-a"): 5}
    await a.shutdown()
    await b.shutdown()


async def cut(pg_url: str, holder: str) -> None:
    """pg_terminate_backend on a replica's lock connection: what the server does when the replica dies."""
    conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                           APPLICATION_PREFIX + holder)
    finally:
        await conn.close()


async def test_two_schedulers_run_each_tick_once_and_the_survivor_takes_over(pg_url: str, pg: Database) -> None:
    runs: Counter[tuple[str, str]] = Counter()
    name = f"scheduler-{uuid.uuid4().hex[:8]}"
    a, b = replica(pg, name, f"a-{name}", runs), replica(pg, name, f"b-{name}", runs)
    assert await a.leader.try_acquire()  # type: ignore[attr-defined]  # a leads before b exists
    a.start()
    b.start()

    def total(replica: JobScheduler) -> int:
        return sum(n for (_, holder), n in runs.items() if holder == replica.leader.holder)

    async def ran(replica: JobScheduler, more_than: int) -> bool:
        return all(runs[(job, replica.leader.holder)] > more_than for job in JOBS)

    await until(lambda: ran(a, 2))
    assert total(b) == 0  # b schedules every job too, and runs none

    # a's lock connection is cut: the server frees the lock at once; whoever wins it next runs the ticks
    await cut(pg_url, a.leader.holder)
    before = dict(runs)
    await until(lambda: _any_new_ticks(runs, before))

    # the holder dies (no release, its session ends): the other takes over within seconds
    dead, survivor = (a, b) if await a.leader.holds() else (b, a)
    dead.scheduler.shutdown(wait=False)
    assert dead._leading is not None
    dead._leading.cancel()
    await cut(pg_url, dead.leader.holder)
    died = asyncio.get_running_loop().time()
    survivor_before = {job: runs[(job, survivor.leader.holder)] for job in JOBS}
    await until(lambda: ran(survivor, max(survivor_before.values())))
    assert asyncio.get_running_loop().time() - died < 15  # retry 0.3 s + a tick of 0.5 s, on a loaded machine

    await a.shutdown()
    await b.shutdown()
    for job in JOBS:  # every run was a tick of its own: as many marks as runs, none twice
        marks = await tick_marks(pg, f"{job}-{name}")
        assert len(marks) == len(set(marks)) == runs[(job, a.leader.holder)] + runs[(job, b.leader.holder)]


async def _any_new_ticks(runs: Counter[tuple[str, str]], before: dict[tuple[str, str], int]) -> bool:
    return sum(runs.values()) >= sum(before.values()) + 2 * len(JOBS)


def test_every_replica_ticks_at_the_same_instants() -> None:
    [spec] = [s for s in job_specs(Settings()) if s.id == "stuck_orders"]
    at = ANCHOR + timedelta(days=40, minutes=7, seconds=12)
    assert spec.slot(at) == ANCHOR + timedelta(days=40, minutes=5)
    assert spec.slot(at + timedelta(minutes=2, seconds=47)) == spec.slot(at)  # a replica ticking a bit late
    assert spec.slot(at + timedelta(minutes=3)) == ANCHOR + timedelta(days=40, minutes=10)


def test_job_list_names_every_job_in_chinese() -> None:
    specs = job_specs(Settings())
    assert [s.id for s in specs] == ["logistics_sweep", "stuck_orders", "escalate_exceptions", "safety_stock",
                                     "consistency"]
    assert all(s.description and s.schedule.startswith("每") for s in specs)
    with_k3 = Settings(k3={"server_url": "https://erp.example.com/k3cloud/", "acct_id": "a", "app_id": "b_c"})
    assert [s.id for s in job_specs(with_k3)][-1] == "k3_pull"  # a channel without settings is left out
