"""The service's scheduler lives with the app: only when asked for (`orderbot serve`), jobs lock released at shutdown."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.keys import DB
from bot.scheduler import LOCK_NAME, SCHEDULER
from config.settings import JobsSettings, Settings
from integrations.db import tables as t
from integrations.db.lease import lock_key, lock_parts
from tests.integration.helpers import rows


async def test_serve_schedules_every_job_and_gives_the_lock_back(db_url: str) -> None:
    settings = Settings(database_url=db_url, jobs=JobsSettings(holder="replica-a", leader_retry_s=0.2))
    app = create_app(settings, deliver=False, schedule=True)
    async with TestClient(TestServer(app)):
        scheduler = app[SCHEDULER]
        assert {job.id for job in scheduler.scheduler.get_jobs()} == {
            "logistics_sweep", "stuck_orders", "escalate_exceptions", "safety_stock", "consistency",
        }
        for _ in range(100):  # the leader loop takes the lock right after start-up
            if await scheduler.leader.holds():
                break
            await asyncio.sleep(0.05)
        assert await scheduler.tick("stuck_orders")
        [mark] = [r["key"] for r in await rows(app[DB], t.alert_marks)]
        assert mark.startswith("job:stuck_orders:")  # the tick, marked so no replica runs it again
        assert await lock_sessions(db_url) == (0 if app[DB].is_sqlite else 1)
    # after shutdown no session holds the lock: another replica need not wait for anything
    assert await lock_sessions(db_url) == 0


async def lock_sessions(db_url: str) -> int:
    """Sessions holding the jobs lock (PostgreSQL; SQLite has no lock: its one process leads)."""
    if not db_url.startswith("postgresql"):
        return 0
    hi, lo = lock_parts(lock_key(LOCK_NAME))
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())", hi, lo))
    finally:
        await conn.close()


async def test_apps_built_for_tests_run_no_jobs(db_url: str) -> None:
    app = create_app(Settings(database_url=db_url), deliver=False)
    async with TestClient(TestServer(app)):
        assert SCHEDULER not in app
