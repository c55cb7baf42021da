"""The service's scheduler lives with the app: only when asked for (`orderbot serve`), lease released at shutdown."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.keys import DB
from bot.scheduler import SCHEDULER
from config.settings import JobsSettings, Settings
from integrations.db import tables as t
from integrations.db.engine import Database
from tests.integration.helpers import rows


async def test_serve_schedules_every_job_and_gives_the_lease_back(db_url: str) -> None:
    settings = Settings(database_url=db_url, jobs=JobsSettings(holder="replica-a"))
    app = create_app(settings, deliver=False, schedule=True)
    async with TestClient(TestServer(app)):
        scheduler = app[SCHEDULER]
        assert {job.id for job in scheduler.scheduler.get_jobs()} == {
            "logistics_sweep", "stuck_orders", "escalate_exceptions", "safety_stock",
        }
        assert await scheduler.tick("stuck_orders")
        assert [r["holder"] for r in await rows(app[DB], t.leases)] == ["replica-a"]
    fresh = Database(db_url)  # after shutdown the row is gone: another replica need not wait for it to expire
    assert await rows(fresh, t.leases) == []
    await fresh.dispose()


async def test_apps_built_for_tests_run_no_jobs(db_url: str) -> None:
    app = create_app(Settings(database_url=db_url), deliver=False)
    async with TestClient(TestServer(app)):
        assert SCHEDULER not in app
