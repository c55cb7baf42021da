"""Writes held back to go together (integrations/db/held_writes.py): what reaches the server, and that a step whose
check fails when its one statement runs leaves nothing of itself behind (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from domain import commands as c
from domain.errors import Conflict, IllegalTransition, OutOfStock
from domain.events import Change
from domain.outbox import SMS_SHIPPED, CustomerText
from handlers.bootstrap import build_bus
from handlers.bus import Deps, MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from tests.integration.helpers import create_cmd, drive, inventory, rows, stock


async def settled(sent: list[str] | None = None) -> None:
    """asyncpg calls the query loggers soon after each statement: let them run (and forget what they saw)."""
    await asyncio.sleep(0.05)
    if sent is not None:
        sent.clear()


@pytest.fixture
async def logged(db: Database, deps: Deps) -> AsyncIterator[tuple[MessageBus, list[str]]]:
    """A bus on a database of its own whose PostgreSQL connections log every statement they send (BEGIN and
    COMMIT included)."""
    if db.is_sqlite:
        pytest.skip("what reaches PostgreSQL")
    sent: list[str] = []
    own = Database(db.url, pool_size=1)

    def log_queries(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(lambda record: sent.append(record.query.strip()))

    event.listen(own.engine.sync_engine, "connect", log_queries)
    yield build_bus(own, deps), sent
    await own.dispose()


async def test_a_lifecycle_step_is_one_read_and_one_statement_without_begin_or_commit(
    bus: MessageBus, logged: tuple[MessageBus, list[str]]
) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    own, sent = logged
    await drive(own, order.order_no, "pick")
    await settled(sent)
    await drive(own, order.order_no, "check")
    await settled()
    assert len(sent) == 2, sent
    assert sent[0].startswith("SELECT orders.id")
    assert sent[1].startswith("WITH u0 AS (UPDATE orders")  # the save, its audit line and its event
    assert "INSERT INTO audit_log" in sent[1] and "INSERT INTO events" in sent[1]


async def test_shipping_sends_its_writes_as_one_statement_after_its_reads(
    bus: MessageBus, db: Database, logged: tuple[MessageBus, list[str]]
) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    first, _ = await bus.handle(create_cmd("DY1001"))
    order, _ = await bus.handle(create_cmd("DY1002"))
    own, sent = logged
    await drive(own, first.order_no, "pick", "check", "pack", "ship", waybill="SF099")  # asyncpg learns the types
    await drive(own, order.order_no, "pick", "check", "pack", waybill="SF100")
    await settled(sent)
    await drive(own, order.order_no, "ship")
    await settled()
    assert not [s for s in sent if s.startswith(("BEGIN", "COMMIT"))], "\n".join(s[:90] for s in sent)
    writes = [s for s in sent if "INSERT" in s or "UPDATE" in s]
    assert len(writes) == 1, sent
    for part in ("UPDATE orders", "UPDATE inventory", "INSERT INTO receivables", "INSERT INTO outbox",
                 "INSERT INTO audit_log", "INSERT INTO events"):
        assert part in writes[0], part
    assert await inventory(db, "SH01", "BP-001") == (6, 0)
    assert [r["order_no"] for r in await rows(db, t.receivables)] == [first.order_no, order.order_no]


async def test_shipping_without_the_stock_leaves_nothing_of_the_shipment(bus: MessageBus, db: Database) -> None:
    """The stock check is the last part of the shipment to run (its row lock is held for the commit alone). When
    it fails, the order's move to shipped, its receivable, its customer text and its event go with it."""
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    await drive(bus, order.order_no, "pick", "check", "pack", waybill="SF100")
    async with db.engine.begin() as conn:  # a reservation lost meanwhile: the shipment finds too little reserved
        await conn.execute(update(t.inventory).values(reserved=1))
    outbox_before = await rows(db, t.outbox)
    with pytest.raises(OutOfStock, match="占用库存不足"):
        await drive(bus, order.order_no, "ship")
    async with UnitOfWork(db) as uow:
        assert (await uow.orders.get(order.order_no)).state == "packed"  # type: ignore[union-attr]
    assert await inventory(db, "SH01", "BP-001") == (10, 1)
    assert await rows(db, t.receivables) == []
    assert await rows(db, t.outbox) == outbox_before
    moves = [e["data"].get("to_state") for e in await rows(db, t.events, t.events.c.order_no == order.order_no)
             if e["type"] == "order.state_changed"]
    assert "packed" in moves and "shipped" not in moves
    shipped = await rows(db, t.audit_log, t.audit_log.c.entity_id == order.order_no, t.audit_log.c.action == "ship")
    assert [(a["outcome"], a["to_state"]) for a in shipped] == [("refused", None)]


async def test_a_version_conflict_found_at_commit_writes_none_of_the_losers_rows(
    bus: MessageBus, db: Database
) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    audit_before, outbox_before = len(await rows(db, t.audit_log)), len(await rows(db, t.outbox))
    first, second = UnitOfWork(db), UnitOfWork(db)
    async with first, second:
        a, b = await first.orders.get(order.order_no), await second.orders.get(order.order_no)
        assert a is not None and b is not None
        a.fire("pick", a.created_at)
        await first.orders.save(a)
        await first.commit()
        b.fire("cancel", b.created_at)
        with pytest.raises(Conflict, match="刚被其他人修改过"):
            await second.orders.save(b)
            await second.record([Change("order", b.order_no, "cancel", "split", "cancelled")], b.created_at)
            await second.send(CustomerText("13800000000", "已取消", SMS_SHIPPED, "sms:lost"), at=b.created_at)
            await second.commit()
    assert len(await rows(db, t.audit_log)) == audit_before
    assert len(await rows(db, t.outbox)) == outbox_before
    assert await rows(db, t.outbox, t.outbox.c.dedup_key == "sms:lost") == []


async def test_what_a_unit_of_work_wrote_is_there_for_its_own_later_reads(bus: MessageBus, db: Database) -> None:
    """Held writes go before any statement that could see them: a read of the same table through the repositories
    (a hot statement) or through SQLAlchemy."""
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    async with UnitOfWork(db) as uow:
        at = order.created_at
        await uow.send(CustomerText("13800000000", "到了", SMS_SHIPPED, "sms:seen"), at=at)
        assert await uow.outbox_keys.taken(["sms:seen", "sms:other"]) == {"sms:seen"}
        await uow.record([Change("order", order.order_no, "note")], at)
        found = await uow.conn.execute(select(t.audit_log.c.action).where(t.audit_log.c.action == "note"))
        assert list(found.scalars()) == ["note"]
        loaded = await uow.orders.get(order.order_no)
        assert loaded is not None
        loaded.fire("pick", at)
        await uow.orders.save(loaded)
        state = await uow.conn.execute(select(t.orders.c.state).where(t.orders.c.order_no == order.order_no))
        assert state.scalar_one() == "picking"
        await uow.rollback()
    assert await rows(db, t.outbox, t.outbox.c.dedup_key == "sms:seen") == []
    async with UnitOfWork(db) as uow:
        assert (await uow.orders.get(order.order_no)).state == "split"  # type: ignore[union-attr]


async def test_a_duplicate_key_in_a_held_row_fails_the_statement_and_writes_nothing(
    bus: MessageBus, db: Database
) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    async with UnitOfWork(db) as uow:
        await uow.send(CustomerText("13800000000", "一", SMS_SHIPPED, "sms:once"), at=order.created_at)
        await uow.commit()
    async with UnitOfWork(db) as uow:
        loaded = await uow.orders.get(order.order_no)
        assert loaded is not None
        loaded.fire("pick", order.created_at)
        await uow.orders.save(loaded)
        with pytest.raises(IntegrityError):  # SQLite: at once; PostgreSQL: at the commit that sends it
            await uow.send(CustomerText("13800000000", "二", SMS_SHIPPED, "sms:once"), at=order.created_at)
            await uow.commit()
    async with UnitOfWork(db) as uow:
        assert (await uow.orders.get(order.order_no)).state == "split"  # type: ignore[union-attr]
    assert len(await rows(db, t.outbox, t.outbox.c.dedup_key == "sms:once")) == 1


async def test_a_refused_command_leaves_its_audit_line(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    with pytest.raises(IllegalTransition):
        await bus.handle(c.FireOrderTrigger(order.order_no, "ship", by="wh1", via="wecom"))
    refused = await rows(db, t.audit_log, t.audit_log.c.entity_id == order.order_no, t.audit_log.c.action == "ship")
    assert [a["outcome"] for a in refused] == ["refused"]


async def test_an_order_read_without_a_lock_is_locked_when_a_batch_loads_it(bus: MessageBus, db: Database) -> None:
    """A batch loads its orders FOR UPDATE (its save does not check versions on PostgreSQL). One the unit of work has
    only read must still be locked then, not handed back from what the unit of work holds."""
    if db.is_sqlite:
        pytest.skip("SQLite locks the whole file for its one writer")
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    async with UnitOfWork(db) as uow:
        assert await uow.orders.get(order.order_no) is not None
        assert list(await uow.orders.get_many([order.order_no])) == [order.order_no]
        async with db.engine.connect() as other:
            with pytest.raises(DBAPIError, match="could not obtain lock"):
                await other.execute(select(t.orders.c.id).where(t.orders.c.order_no == order.order_no)
                                    .with_for_update(nowait=True))
