"""The jobs' time lines at their exact values, on SQLite and PostgreSQL, run as `orderbot jobs run NAME` runs them:
an order exactly its state's SLA old is not stuck yet ("已超过 N 分钟" means more than N), one second later it
is; an exception exactly ACK_MINUTES unacknowledged is not escalated yet, one second later it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.scheduler import job_env, job_specs
from config.settings import EscalationSettings, Settings, SlaSettings
from domain.users import User
from handlers.bootstrap import build_bus
from handlers.bus import Deps, MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from tests.integration.helpers import create_cmd, drive, rows, stock

T0 = datetime(2026, 2, 6, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def run_job(name: str, db: Database, bus: MessageBus) -> None:
    settings = Settings(database_url=db.url, sla=SlaSettings(minutes={"picking": 60}),
                        escalation=EscalationSettings(ack_minutes=30))
    async with job_env(settings, db, bus, bus.deps) as env:
        [job] = [spec for spec in job_specs(settings) if spec.id == name]
        await job.run(env)


async def test_stuck_and_escalation_lines_at_their_exact_values(db: Database) -> None:
    clock = Clock()
    async with UnitOfWork(db) as uow:
        await uow.users.upsert(User("wh1", "仓管一", frozenset({"warehouse"}), store="SH01"), T0)
        await uow.users.upsert(User("mgr1", "李经理", frozenset({"manager"})), T0)
        await uow.commit()
    bus = build_bus(db, Deps(clock=clock))
    await stock(bus, "SH01", "BP-001", 100)
    order, _ = await bus.handle(create_cmd("DY1"))
    await drive(bus, order.order_no, "pick")  # enters picking at T0

    clock.now = T0 + timedelta(minutes=60)
    await run_job("stuck_orders", db, bus)
    assert await rows(db, t.exceptions) == []
    clock.now += SECOND
    await run_job("stuck_orders", db, bus)
    [stuck] = await rows(db, t.exceptions)
    assert stuck["kind"] == "stuck_order" and "已超过 60 分钟" in stuck["message"]

    opened = clock.now
    clock.now = opened + timedelta(minutes=30)
    await run_job("escalate_exceptions", db, bus)
    assert await rows(db, t.outbox, t.outbox.c.recipient == "mgr1") == []
    clock.now += SECOND
    await run_job("escalate_exceptions", db, bus)
    [digest] = await rows(db, t.outbox, t.outbox.c.recipient == "mgr1")
    assert "超过 30 分钟无人确认" in digest["payload"]["text"]
