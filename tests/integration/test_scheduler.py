"""Two replicas (schedulers with their own lease holder ids) on one PostgreSQL database: every job runs once per tick, and a survivor takes over."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from bot.scheduler import JobEnv, JobScheduler, JobSpec, job_specs
from config.settings import Settings
from handlers.bootstrap import build_bus
from handlers.bus import Deps
from integrations.db.engine import Database
from integrations.db.lease import Lease


def replica(
    db: Database, lease_name: str, holder: str, runs: Counter[str], ttl_s: float = 30, every_s: float = 0.4
) -> JobScheduler:
    async def job(env: JobEnv, name: str) -> str:
        runs[name] += 1
        return "ok"

    specs = [
        JobSpec(name, "test", name, IntervalTrigger(seconds=every_s), lambda env, n=name: job(env, n))
        for name in ("logistics_sweep", "stuck_orders")
    ]
    env = JobEnv(db, build_bus(db, Deps()), Deps(), Settings(database_url=db.url), courier=None)  # type: ignore[arg-type]
    lease = Lease(db, lease_name, holder, ttl=timedelta(seconds=ttl_s))
    return JobScheduler(env, lease, specs)


@pytest.fixture
async def pg(pg_url: str) -> Database:
    database = Database(pg_url)
    yield database  # type: ignore[misc]
    await database.dispose()


async def test_each_tick_runs_on_one_replica(pg: Database) -> None:
    runs: Counter[str] = Counter()
    name = f"scheduler-{uuid.uuid4().hex[:8]}"
    a, b = replica(pg, name, "replica-a", runs), replica(pg, name, "replica-b", runs)
    for _ in range(5):  # five ticks of each job, both replicas firing at once
        ran = await asyncio.gather(a.tick("logistics_sweep"), b.tick("logistics_sweep"),
                                   b.tick("stuck_orders"), a.tick("stuck_orders"))
        assert sorted(ran) == [False, False, True, True]
    assert runs == {"logistics_sweep": 5, "stuck_orders": 5}
    assert a.runs["logistics_sweep"] + b.runs["logistics_sweep"] == 5
    assert 0 in (sum(a.runs.values()), sum(b.runs.values()))  # one replica ran everything


async def test_real_schedulers_and_failover(pg: Database) -> None:
    runs: Counter[str] = Counter()
    name = f"scheduler-{uuid.uuid4().hex[:8]}"
    # the lease outlives several ticks (0.4 s) by a wide margin, so a loaded machine's late tick never loses it
    a, b = replica(pg, name, "replica-a", runs, ttl_s=3.0), replica(pg, name, "replica-b", runs, ttl_s=3.0)
    assert await a.lease.acquire()  # a is the holder before b exists
    a.start()
    b.start()
    await asyncio.sleep(1.9)  # ~4 ticks per job on each replica
    assert sum(b.runs.values()) == 0
    assert runs["logistics_sweep"] == a.runs["logistics_sweep"] >= 3
    # a dies without releasing: b takes over once a's lease expires
    a.scheduler.shutdown(wait=False)
    before = dict(runs)
    await asyncio.sleep(4.5)  # a's lease (3 s from its last renewal) runs out, then b's next tick takes it
    assert sum(b.runs.values()) > 0
    assert runs["logistics_sweep"] > before["logistics_sweep"]
    await b.shutdown()
    assert await b.lease.current() is None


def test_job_list_names_every_job_in_chinese() -> None:
    specs = job_specs(Settings())
    assert [s.id for s in specs] == ["logistics_sweep", "stuck_orders", "escalate_exceptions", "safety_stock"]
    assert all(s.description and s.schedule.startswith("每") for s in specs)
