"""The hot statements (asyncpg directly on PostgreSQL) write what SQLAlchemy wrote and fail as it failed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from domain.errors import OutOfStock
from domain.event_wire import WireEvent
from domain.events import Change
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork

AT = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


async def test_audit_and_outbox_rows_commit_with_the_unit_of_work(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        uow.acting("wh1", "wecom")
        await uow.record([Change("order", "OB1", "pick", "split", "picking")], AT)
        await uow.enqueue(channel="wecom", kind="text", recipient="wh1", payload={"text": "拣货"}, at=AT)
        await uow.commit()
    async with db.engine.connect() as conn:
        audit = (await conn.execute(select(t.audit_log))).one()._mapping
        outbox = (await conn.execute(select(t.outbox))).one()._mapping
    assert (audit["actor"], audit["to_state"], audit["reason"], audit["detail"]) == ("wh1", "picking", "", None)
    assert (outbox["payload"], outbox["status"], outbox["dedup_key"]) == ({"text": "拣货"}, "pending", None)


async def test_nothing_is_written_without_commit(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        await uow.record([Change("order", "OB1", "pick", actor="wh1", via="wecom")], AT)
    async with db.engine.connect() as conn:
        assert (await conn.execute(select(t.audit_log))).all() == []


async def test_a_repeated_dedup_key_is_an_integrity_error(db: Database) -> None:
    """The bus retries on IntegrityError: the driver's own exception must not leak instead."""
    async with UnitOfWork(db) as uow:
        await uow.enqueue(channel="sms", kind="x", recipient="1", payload={}, at=AT, dedup_key="k")
        with pytest.raises(IntegrityError):  # at the second row, or (PostgreSQL holds rows back) at the commit
            await uow.enqueue(channel="sms", kind="x", recipient="1", payload={}, at=AT, dedup_key="k")
            await uow.commit()


async def test_a_short_deduction_refuses_at_commit_and_writes_nothing(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        await uow.conn.execute(t.inventory.insert().values(store="SH01", sku="BP-001", on_hand=1, reserved=1,
                                                          version=1, updated_at=AT))
        await uow.commit()
    async with UnitOfWork(db) as uow:
        await uow.inventory.deduct("SH01", "BP-001", 2, AT)
        await uow.record([Change("order", "OB1", "ship", actor="wh1", via="wecom")], AT)
        with pytest.raises(OutOfStock):
            await uow.commit()
    async with UnitOfWork(db) as uow:
        stock = await uow.inventory.get("SH01", "BP-001")
        assert stock is not None and (stock.on_hand, stock.reserved) == (1, 1)
        assert await uow.history("order", "OB1") == []


async def test_a_read_of_stock_sees_the_deductions_made_before_it(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        await uow.conn.execute(t.inventory.insert().values(store="SH01", sku="BP-001", on_hand=5, reserved=2,
                                                          version=1, updated_at=AT))
        await uow.inventory.deduct("SH01", "BP-001", 2, AT)
        stock = await uow.inventory.get("SH01", "BP-001")
        assert stock is not None and (stock.on_hand, stock.reserved) == (3, 0)


@pytest.mark.parametrize("more", [0, 5])  # a command's few rows (VALUES), a batch's many (arrays)
async def test_audit_lines_and_events_logged_together_are_stored_as_written_apart(db: Database, more: int) -> None:
    extra = [Change("order", f"OB{9 + k}", "pick", "split", "picking", reason=f"第{k}") for k in range(more)]
    changes = [Change("order", "OB1", "pick", "split", "picking"),
               Change("order", "OB2", "ship", "packed", "shipped", actor="rule", via="rule", detail={"件": 2}), *extra]
    wire = [WireEvent("order.state_changed", "OB1", {"to": "picking"}),
            WireEvent("order.shipped", "OB2", {"items": [["BP-001", 1]], "note": None}, actor="k3", via="erp"),
            *(WireEvent("order.state_changed", f"OB{9 + k}", {"k": k}) for k in range(more))]
    n = 2 + more
    for together in (False, True):
        async with UnitOfWork(db) as uow:
            uow.acting("wh1", "wecom")
            if together:
                await uow.log(changes, wire, AT)
            else:
                await uow.record(changes, AT)
                await uow.store_events(wire, AT)
            await uow.commit()
    async with db.engine.connect() as conn:
        audit = [r._mapping for r in await conn.execute(select(t.audit_log).order_by(t.audit_log.c.id))]
        stored = [r._mapping for r in await conn.execute(select(t.events).order_by(t.events.c.id))]
    columns = lambda rows: [{k: v for k, v in r.items() if k != "id"} for r in rows]  # noqa: E731
    assert columns(audit[n:]) == columns(audit[:n]) and len(audit) == 2 * n
    assert columns(stored[n:]) == columns(stored[:n]) and len(stored) == 2 * n
    assert [r["actor"] for r in audit[n:n + 2]] == ["wh1", "rule"] and audit[n]["detail"] is None
    assert [(r["order_no"], r["actor"], r["data"]) for r in stored[n:n + 2]] == [
        ("OB1", "wh1", {"to": "picking"}), ("OB2", "k3", {"items": [["BP-001", 1]], "note": None})]
    assert [r["entity_id"] for r in audit[n:]] == ["OB1", "OB2", *(f"OB{9 + k}" for k in range(more))]


async def test_a_value_too_long_for_its_column_fails_the_log_as_it_fails_the_audit(db: Database) -> None:
    """Logged together, a value is not cut to its column's length (a cast could): it is refused, as alone."""
    if db.is_sqlite:
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    async with UnitOfWork(db) as uow:
        with pytest.raises(DBAPIError) as apart:
            await uow.record([Change("order", "OB1", "pick", outcome="x" * 17)], AT)
            await uow.commit()
    async with UnitOfWork(db) as uow:
        with pytest.raises(DBAPIError) as together:
            await uow.log([Change("order", "OB1", "pick", outcome="x" * 17)],
                          [WireEvent("order.state_changed", "OB1", {})], AT)
            await uow.commit()
    assert type(together.value) is type(apart.value)
    async with db.engine.connect() as conn:
        assert (await conn.execute(select(t.audit_log))).all() == []


async def test_a_list_read_finds_exactly_the_keys_asked_for(db: Database) -> None:
    """PostgreSQL takes the list as one array: a key longer than the column is compared whole, never cut to fit."""
    kept = "k" * 128  # the dedup_key column's length
    async with UnitOfWork(db) as uow:
        for key in (kept, "sms:shipped:OB1"):
            await uow.enqueue(channel="sms", kind="x", recipient="1", payload={}, at=AT, dedup_key=key)
        await uow.commit()
    async with UnitOfWork(db) as uow:
        assert await uow.outbox_keys.taken([kept + "k", "sms:shipped:OB2"]) == set()
        assert await uow.outbox_keys.taken([kept, "sms:shipped:OB1", "sms:shipped:OB2"]) == {kept, "sms:shipped:OB1"}
        assert await uow.orders.get_many([]) == {}


async def test_a_commit_the_database_refuses_is_sqlalchemys_error_and_the_pool_goes_on(db: Database) -> None:
    """On asyncpg the COMMIT goes straight to the driver: a refusal at COMMIT (a deferred unique check) still
    surfaces as SQLAlchemy's IntegrityError, nothing is kept, and the connection serves the next unit of work."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL: a constraint checked at COMMIT")
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE deferred_once (k int UNIQUE DEFERRABLE INITIALLY DEFERRED)"))
    try:
        with pytest.raises(IntegrityError):
            async with UnitOfWork(db) as uow:
                await uow.conn.execute(text("INSERT INTO deferred_once VALUES (1), (1)"))  # accepted until COMMIT
                await uow.record([Change("order", "OB1", "pick", "split", "picking")], AT)
                await uow.commit()
        async with UnitOfWork(db) as uow:
            await uow.record([Change("order", "OB2", "pick", "split", "picking")], AT)
            await uow.commit()
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM deferred_once"))).scalar_one() == 0
            assert [r.entity_id for r in await conn.execute(select(t.audit_log))] == ["OB2"]
    finally:
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP TABLE deferred_once"))
