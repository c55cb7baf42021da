"""Orders through the bus on a real database (SQLite and PostgreSQL): state, stock, audit, outbox."""

from __future__ import annotations

import asyncio

import pytest

from domain import commands as c
from domain.errors import Conflict, GuardRefused, IllegalTransition, NotFound
from handlers.bus import MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from tests.integration.helpers import create_cmd, drive, inventory, rows, stock


async def test_paid_order_is_allocated_to_its_store_with_stock_reserved(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, created = await bus.handle(create_cmd())
    assert created and order.state == "split" and order.store == "SH01"
    assert order.order_no.startswith("OB")
    assert await inventory(db, "SH01", "BP-001") == (10, 2)
    async with UnitOfWork(db) as uow:
        loaded = await uow.orders.get(order.order_no)
    assert loaded is not None
    assert (loaded.state, loaded.lines, loaded.address, loaded.version) == (
        "split", order.lines, "上海市浦东新区张杨路500号", order.version)


async def test_the_same_channel_order_twice_is_one_order(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    first, _ = await bus.handle(create_cmd())
    again, created = await bus.handle(create_cmd())
    assert (again.order_no, created) == (first.order_no, False)
    assert len(await rows(db, t.orders)) == 1
    assert await inventory(db, "SH01", "BP-001") == (10, 2)


async def test_concurrent_duplicate_posts_still_make_one_order(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    results = await asyncio.gather(*(bus.handle(create_cmd()) for _ in range(4)))
    assert len({order.order_no for order, _ in results}) == 1
    assert len(await rows(db, t.orders)) == 1
    assert await inventory(db, "SH01", "BP-001") == (10, 2)


async def test_whole_lifecycle_deducts_stock_creates_receivable_and_texts_customer(
    bus: MessageBus, db: Database
) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    await drive(bus, order.order_no, "pick", "check", "pack")
    await drive(bus, order.order_no, "ship", waybill="SF1234567890")
    await drive(bus, order.order_no, "pick_up", "deliver", "complete")
    assert await inventory(db, "SH01", "BP-001") == (8, 0)
    [receivable] = await rows(db, t.receivables)
    assert (receivable["order_no"], receivable["amount_fen"]) == (order.order_no, 39_800)
    [sms] = await rows(db, t.outbox, t.outbox.c.channel == "sms")
    assert sms["recipient"] == "13800000000" and "SF1234567890" in sms["payload"]["text"]
    trail = await rows(db, t.audit_log, t.audit_log.c.entity == "order")
    assert [(a["action"], a["from_state"], a["to_state"]) for a in trail] == [
        ("create", None, "paid"), ("allocate", "paid", "split"), ("pick", "split", "picking"),
        ("check", "picking", "quality_check"), ("pack", "quality_check", "packed"),
        ("ship", "packed", "shipped"), ("pick_up", "shipped", "in_transit"),
        ("deliver", "in_transit", "delivered"), ("complete", "delivered", "completed"),
    ]
    assert {a["actor"] for a in trail[2:]} == {"wh1"} and {a["via"] for a in trail[2:]} == {"wecom"}


async def test_refused_trigger_changes_nothing_and_is_audited_as_refused(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    with pytest.raises(IllegalTransition, match="已拆单"):
        await drive(bus, order.order_no, "ship", waybill="SF1")
    async with UnitOfWork(db) as uow:
        assert (await uow.orders.get(order.order_no)).state == "split"  # type: ignore[union-attr]
    assert await inventory(db, "SH01", "BP-001") == (10, 2)
    assert await rows(db, t.receivables) == []
    [refusal] = await rows(db, t.audit_log, t.audit_log.c.outcome == "refused")
    assert (refusal["action"], refusal["actor"], refusal["entity_id"]) == ("ship", "wh1", order.order_no)
    assert "不能发货" in refusal["reason"]


async def test_guard_refusal_leaves_no_half_written_rows(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    await drive(bus, order.order_no, "pick", "check", "pack")
    with pytest.raises(GuardRefused, match="运单号"):
        await drive(bus, order.order_no, "ship")
    assert await rows(db, t.outbox, t.outbox.c.channel == "sms") == []
    assert await inventory(db, "SH01", "BP-001") == (10, 2)


async def test_cancel_in_the_warehouse_releases_the_stock(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    await drive(bus, order.order_no, "pick", "cancel")
    assert await inventory(db, "SH01", "BP-001") == (10, 0)


async def test_an_order_no_store_can_fill_stays_paid_with_an_exception(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 1)
    await bus.handle(c.CreateOrder(**{**create_cmd().__dict__}))  # qty 2 > 1
    [order] = await rows(db, t.orders)
    assert order["state"] == "paid"
    [exc] = await rows(db, t.exceptions)
    assert exc["kind"] == "out_of_stock" and "BP-001" in exc["message"]
    assert await inventory(db, "SH01", "BP-001") == (1, 0)


async def test_lines_in_two_stores_split_into_child_orders(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 5)
    await stock(bus, "HZ01", "OF-002", 5)
    cmd = create_cmd()
    cmd = c.CreateOrder(**{**cmd.__dict__, "lines": (c.LineInput("BP-001", 2, 19_900), c.LineInput("OF-002", 1, 4_500))})
    parent, _ = await bus.handle(cmd)
    assert parent.state == "split"
    async with UnitOfWork(db) as uow:
        children = await uow.orders.children(parent.order_no)
    assert sorted((ch.store, ch.state, ch.items) for ch in children) == [
        ("HZ01", "split", (("OF-002", 1),)), ("SH01", "split", (("BP-001", 2),))]
    assert await inventory(db, "SH01", "BP-001") == (5, 2)
    assert await inventory(db, "HZ01", "OF-002") == (5, 1)


async def test_two_concurrent_changes_to_one_order_cannot_both_win(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    first, second = UnitOfWork(db), UnitOfWork(db)
    async with first, second:
        a = await first.orders.get(order.order_no)
        b = await second.orders.get(order.order_no)
        assert a is not None and b is not None
        a.fire("pick", a.created_at)
        b.fire("cancel", b.created_at)
        await first.orders.save(a)
        await first.commit()
        with pytest.raises(Conflict, match="刚被其他人修改过"):  # on PostgreSQL the save is sent with the commit
            await second.orders.save(b)
            await second.commit()
    async with UnitOfWork(db) as uow:
        final = await uow.orders.get(order.order_no)
    assert final is not None and (final.state, final.version) == ("picking", order.version + 1)


async def test_racing_ship_commands_ship_once(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    await drive(bus, order.order_no, "pick", "check", "pack")
    results = await asyncio.gather(
        *(drive(bus, order.order_no, "ship", waybill=f"SF{i}") for i in range(3)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, (Conflict, IllegalTransition)) for r in results if r is not None)
    assert await inventory(db, "SH01", "BP-001") == (8, 0)
    assert len(await rows(db, t.receivables)) == 1


async def test_unknown_order_is_named(bus: MessageBus) -> None:
    with pytest.raises(NotFound, match="找不到订单 OB99999999"):
        await drive(bus, "OB99999999", "pick")


async def test_order_can_be_found_by_external_id_or_waybill(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    await drive(bus, "DY1001", "pick", "check")
    await bus.handle(c.FireOrderTrigger(order.order_no, "pack", by="wh1", via="wecom", waybill="YT7777"))
    await drive(bus, "YT7777", "ship")
    async with UnitOfWork(db) as uow:
        assert (await uow.orders.get(order.order_no)).state == "shipped"  # type: ignore[union-attr]


async def test_address_change_mid_picking_voids_waybill_and_pushes_to_the_store(
    bus: MessageBus, db: Database
) -> None:
    from domain.users import User

    async with UnitOfWork(db) as uow:
        await uow.users.upsert(User("wh1", "王强", frozenset({"warehouse"}), "SH01"), uow_now := __import__("domain.clock").clock.utcnow())
        await uow.users.upsert(User("wh9", "赵六", frozenset({"warehouse"}), "HZ01"), uow_now)
        await uow.commit()
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    await drive(bus, order.order_no, "pick")
    await bus.handle(c.ChangeAddress(order.order_no, "上海市徐汇区漕溪北路1号", by="customer", via="api"))
    pushed = await rows(db, t.outbox, t.outbox.c.channel == "chat", t.outbox.c.dedup_key.like("relabel:%"))
    assert [p["recipient"] for p in pushed] == ["wh1"]
    assert "改地址" in pushed[0]["payload"]["title"]
    [draft] = await rows(db, t.waybill_drafts)
    assert (draft["order_no"], draft["address"], draft["status"]) == (order.order_no, "上海市徐汇区漕溪北路1号", "draft")
    assert f"#{draft['id']}" in pushed[0]["payload"]["description"]
    with pytest.raises(GuardRefused):
        await drive(bus, order.order_no, "check", "pack", "ship", waybill="SF1")
    await bus.handle(c.ConfirmRelabel(order.order_no, "SF20261124", by="wh1", via="wecom"))
    [draft] = await rows(db, t.waybill_drafts)
    assert (draft["status"], draft["waybill"]) == ("used", "SF20261124")
    await drive(bus, order.order_no, "ship")  # packed meanwhile; the relabelled waybill ships


async def test_a_scanned_wave_moves_each_order_and_reports_refusals_one_by_one(
    bus: MessageBus, db: Database
) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    a, _ = await bus.handle(create_cmd("DY1"))
    b, _ = await bus.handle(create_cmd("DY2"))
    await drive(bus, a.order_no, "pick")
    outcome = await bus.handle(
        c.FireOrderTriggers((a.order_no, b.order_no, "OB99999999"), "check", by="wh1", via="scanner")
    )
    assert outcome.done == (a.order_no,)
    assert "不能质检" in outcome.refused[b.order_no] and "找不到" in outcome.refused["OB99999999"]
    states = {r["order_no"]: (r["state"], r["version"]) for r in await rows(db, t.orders)}
    assert states[a.order_no] == ("quality_check", a.version + 2)
    assert states[b.order_no] == ("split", b.version)
    audit = await rows(db, t.audit_log, t.audit_log.c.action == "check")
    assert sorted((r["entity_id"], r["outcome"]) for r in audit) == [(a.order_no, "ok"), (b.order_no, "refused")]


async def test_allocate_on_a_shipped_order_is_a_state_jump_not_an_out_of_stock(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 2)
    order, _ = await bus.handle(create_cmd())
    await drive(bus, order.order_no, "pick", "check", "pack")
    await drive(bus, order.order_no, "ship", waybill="SF1")
    with pytest.raises(IllegalTransition):
        await drive(bus, order.order_no, "allocate")
    assert await rows(db, t.exceptions) == []


async def test_paying_an_unpaid_order_allocates_it(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 5)
    order, _ = await bus.handle(create_cmd(paid=False))
    assert order.state == "pending_payment"
    await drive(bus, order.order_no, "pay", by="api")
    [row] = await rows(db, t.orders)
    assert row["state"] == "split" and await inventory(db, "SH01", "BP-001") == (5, 2)
