"""An address change in the warehouse: relabel card, voided waybill and finance's 账期重算 commit together, or not at all."""

from __future__ import annotations

from typing import Any

import pytest

from domain import commands as c
from domain.users import User
from handlers.bus import Deps, MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from tests.integration.helpers import create_cmd, drive, rows, stock

NEW_ADDRESS = "上海市闵行区七莘路100号"


async def packed_order(db: Database, bus: MessageBus) -> str:
    async with UnitOfWork(db) as uow:
        now = Deps().now
        await uow.users.upsert(User("wh1", "仓管一", frozenset({"warehouse"}), store="SH01"), now)
        await uow.users.upsert(User("fin1", "财务一", frozenset({"finance"})), now)
        await uow.commit()
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd("DY1"))
    await drive(bus, order.order_no, "pick", "check", "pack", waybill="SF001")
    return str(order.order_no)


async def test_address_change_tells_the_warehouse_and_finance(db: Database, bus: MessageBus) -> None:
    order_no = await packed_order(db, bus)
    before = len(await rows(db, t.outbox))
    await bus.handle(c.ChangeAddress(order_no, NEW_ADDRESS, by="cs1", via="api"))
    order = (await rows(db, t.orders, t.orders.c.order_no == order_no))[0]
    assert (order["address"], order["waybill"], order["address_change_pending"]) == (NEW_ADDRESS, None, True)
    outbox = {r["recipient"]: r["payload"] for r in await rows(db, t.outbox, t.outbox.c.id > before)}
    assert outbox["wh1"]["title"].startswith("改地址") and outbox["wh1"]["highlight"] is True
    assert "账期重算" in outbox["fin1"]["text"] and NEW_ADDRESS in outbox["fin1"]["text"]


async def test_a_failed_finance_push_rolls_the_whole_change_back(
    db: Database, bus: MessageBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_no = await packed_order(db, bus)
    outbox_before = await rows(db, t.outbox)
    real = UnitOfWork.enqueue_many

    async def finance_down(self: UnitOfWork, batch: list[dict[str, Any]], *, at: Any) -> None:
        if any(row["recipient"] == "fin1" for row in batch):
            raise RuntimeError("outbox insert failed")
        await real(self, batch, at=at)

    monkeypatch.setattr(UnitOfWork, "enqueue_many", finance_down)
    with pytest.raises(RuntimeError):
        await bus.handle(c.ChangeAddress(order_no, NEW_ADDRESS, by="cs1", via="api"))
    order = (await rows(db, t.orders, t.orders.c.order_no == order_no))[0]
    assert (order["address"], order["waybill"], order["address_change_pending"]) == (
        "上海市浦东新区张杨路500号", "SF001", False,
    )
    assert await rows(db, t.outbox) == outbox_before  # neither the warehouse card nor the finance push
    assert await rows(db, t.waybill_drafts) == []  # nor the new waybill draft
    assert await rows(db, t.audit_log, t.audit_log.c.action == "change_address") == []
