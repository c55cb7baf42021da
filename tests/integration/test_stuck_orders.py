"""Stuck orders go to whoever can move them, once per order and state; unacknowledged exceptions go up to managers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from domain import commands as c
from domain.users import User
from handlers.bootstrap import build_bus
from handlers.bus import Deps, MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from tests.integration.helpers import create_cmd, drive, rows, stock

T0 = datetime(2026, 2, 6, 12, 0, tzinfo=UTC)
SLA = {"split": 30, "picking": 60, "quality_check": 30, "packed": 120, "delivery_exception": 240}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def setup(db: Database) -> tuple[MessageBus, Clock]:
    clock = Clock()
    async with UnitOfWork(db) as uow:
        for user in (
            User("wh1", "仓管一", frozenset({"warehouse"}), store="SH01"),
            User("wh2", "仓管二", frozenset({"warehouse"}), store="SH02"),
            User("sup1", "王主管", frozenset({"supervisor"})),
            User("mgr1", "李经理", frozenset({"manager"})),
        ):
            await uow.users.upsert(user, T0)
        await uow.commit()
    bus = build_bus(db, Deps(clock=clock))
    await stock(bus, "SH01", "BP-001", 100)
    return bus, clock


async def outbox(db: Database, recipient: str) -> list[str]:
    """What the jobs under test pushed (other pushes, e.g. pick tasks, are not theirs)."""
    found = await rows(db, t.outbox, t.outbox.c.recipient == recipient)
    texts = [r["payload"].get("title") or r["payload"]["text"] for r in found]
    return [text for text in texts if text.startswith(("卡单提醒", "**异常升级**"))]


async def test_stuck_orders_reach_the_responsible_role_once(db: Database) -> None:
    bus, clock = await setup(db)
    picking, _ = await bus.handle(create_cmd("DY1"))
    await drive(bus, picking.order_no, "pick")
    fresh, _ = await bus.handle(create_cmd("DY2"))  # split, but only for 10 minutes
    trouble, _ = await bus.handle(create_cmd("DY3"))
    await drive(bus, trouble.order_no, "pick", "check", "pack", waybill="SF3")
    await drive(bus, trouble.order_no, "ship", "report_exception")
    clock.now = T0 + timedelta(minutes=50)
    await drive(bus, fresh.order_no, "pick")  # fresh enters picking at +50
    clock.now = T0 + timedelta(minutes=61)

    assert await bus.handle(c.FlagStuckOrders(tuple(SLA.items()))) == 1
    assert await outbox(db, "wh1") == [f"卡单提醒 · {picking.order_no}"]
    assert await outbox(db, "wh2") == [] and await outbox(db, "sup1") == []

    clock.now = T0 + timedelta(minutes=241)
    assert await bus.handle(c.FlagStuckOrders(tuple(SLA.items()))) == 2  # fresh's picking, trouble's delivery_exception
    assert await outbox(db, "sup1") == [f"卡单提醒 · {trouble.order_no}"]
    assert sorted(await outbox(db, "wh1")) == sorted([f"卡单提醒 · {picking.order_no}", f"卡单提醒 · {fresh.order_no}"])
    assert await bus.handle(c.FlagStuckOrders(tuple(SLA.items()))) == 0  # deduplicated per order + state

    kinds = [(x["kind"], x["order_no"]) for x in await rows(db, t.exceptions)]
    assert sorted(kinds) == sorted(("stuck_order", no) for no in (picking.order_no, fresh.order_no, trouble.order_no))


async def test_unacknowledged_exceptions_escalate_to_managers_once(db: Database) -> None:
    bus, clock = await setup(db)
    order, _ = await bus.handle(create_cmd("DY1"))
    await drive(bus, order.order_no, "pick")
    other, _ = await bus.handle(create_cmd("DY2"))
    await drive(bus, other.order_no, "pick")
    clock.now = T0 + timedelta(minutes=61)
    await bus.handle(c.FlagStuckOrders(tuple(SLA.items())))
    async with db.engine.begin() as conn:  # someone acknowledged the second one
        await conn.execute(
            update(t.exceptions).where(t.exceptions.c.order_no == other.order_no)
            .values(acknowledged_by="wh1", acknowledged_at=clock.now)
        )

    clock.now = T0 + timedelta(minutes=61 + 29)
    assert await bus.handle(c.EscalateIncidents(30)) == 0
    clock.now = T0 + timedelta(minutes=61 + 31)
    assert await bus.handle(c.EscalateIncidents(30)) == 1
    [digest] = await outbox(db, "mgr1")
    assert "异常升级" in digest and order.order_no in digest and other.order_no not in digest
    clock.now += timedelta(minutes=30)
    assert await bus.handle(c.EscalateIncidents(30)) == 0
    assert len(await outbox(db, "mgr1")) == 1
