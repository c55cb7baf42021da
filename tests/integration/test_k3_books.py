"""The books in K3 Cloud through the outbox to the fake K3, on SQLite and PostgreSQL: a shipped order's receivable
with our numbers, submitted and audited, its number on the order and in 查询; a time-out after K3 accepted still
books once; K3's refusal becomes finance's task card with K3's own message; an approved refund books the red
receivable; without settings the rows are set aside as unconfigured and booked once configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from domain import commands as c
from domain.users import User
from handlers.bus import MessageBus
from handlers.chat_orders import status_text
from integrations.channels.k3.books import BooksConfig, K3Books
from integrations.channels.k3.books_dead import K3DeadRows
from integrations.channels.k3.books_outbox import (
    K3BooksSender,
    UnconfiguredBooks,
    bills_of,
    revive_unconfigured,
)
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.delivery.dispatcher import OutboxDispatcher, Sender
from integrations.fakes.k3 import FakeK3
from integrations.fakes.k3_books import SAVE_PATH
from tests.integration.helpers import create_cmd, drive, rows, stock
from tests.integration.k3_support import client

CUSTOMER_KEY = ("k3_customer", "CUST-0001")


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[FakeK3]:
    async with FakeK3() as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def sender(db: Database, fake: FakeK3, clock: Clock) -> AsyncIterator[K3BooksSender]:
    async with httpx.AsyncClient(timeout=0.3) as http:
        yield K3BooksSender(K3Books(client(fake, http), BooksConfig("101")), db, clock=clock)


def dispatcher(db: Database, sender: Sender, clock: Clock) -> OutboxDispatcher:
    return OutboxDispatcher(db, {"k3": sender}, clock=clock, base_backoff_s=1, max_backoff_s=1,
                            retry_window_s=86400, on_dead=K3DeadRows(db, clock=clock))


async def drain(d: OutboxDispatcher, clock: Clock, passes: int = 6) -> None:
    for _ in range(passes):
        await d.run_once()
        clock.now += timedelta(seconds=2)


async def shipped(bus: MessageBus, external_id: str = "DY1001", qty: int = 2) -> str:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd(external_id, qty=qty))
    await drive(bus, order.order_no, "pick", "check", "pack")
    await drive(bus, order.order_no, "ship", waybill="SF1234567890")
    return str(order.order_no)


async def k3_rows(db: Database) -> list[dict[str, object]]:
    return await rows(db, t.outbox, t.outbox.c.channel == "k3")


async def shown(db: Database, order_no: str) -> str:
    async with UnitOfWork(db) as uow:
        order = await uow.orders.get(order_no)
        assert order is not None
        return await status_text(order, uow, datetime.now(UTC))


async def test_a_shipment_books_one_audited_receivable_with_our_numbers_shown_by_the_order_query(
    bus: MessageBus, db: Database, fake: FakeK3, sender: K3BooksSender, clock: Clock
) -> None:
    async with UnitOfWork(db) as uow:  # the customer is known to K3 (a K3 order brought the key)
        await uow.customer_keys.add([(CUSTOMER_KEY, "C-4S-01")], clock())
        await uow.commit()
    no = await shipped(bus)
    await drain(dispatcher(db, sender, clock), clock)

    [bill] = fake.books.receivables.values()
    assert bill.header | {"FDATE": "-"} == {
        "FBillNo": "AR00000001", "FDocumentStatus": "C", "FAR_Remark": f"orderbot 发货 {no}",
        "FCUSTOMERID.FNumber": "CUST-0001", "FDATE": "-", "FSETTLEORGID.FNumber": "101",
        "FBillTypeID.FNumber": "YSDLX01_SYS"}
    assert bill.lines == [("BP-001", 2, 199.0)]
    assert (fake.books.submits, fake.books.audits, fake.refused) == (["AR00000001"], ["AR00000001"], [])
    [row] = await k3_rows(db)
    assert (row["status"], row["kind"]) == ("delivered", "receivable")
    [stored] = await bills_of(db, no)
    assert (stored["kind"], stored["bill_no"], stored["status"]) == ("receivable", "AR00000001", "C")
    assert "金蝶K3：应收单 AR00000001（已审核）" in await shown(db, no)
    trail = await rows(db, t.audit_log, t.audit_log.c.action == "k3_booked")
    assert [(a["entity_id"], a["actor"], a["via"], a["detail"]["bill_no"]) for a in trail] == [
        (no, "system", "k3", "AR00000001")]


async def test_a_timeout_after_k3_accepted_the_save_still_books_exactly_once(
    bus: MessageBus, db: Database, fake: FakeK3, sender: K3BooksSender, clock: Clock
) -> None:
    no = await shipped(bus)
    fake.books.accept_then_stall(1.0)  # saved at K3; the answer comes after the client's 0.3 s
    d = dispatcher(db, sender, clock)
    await d.run_once()
    [row] = await k3_rows(db)
    assert (row["status"], row["attempts"], len(fake.books.receivables)) == ("pending", 1, 1)
    assert "ReadTimeout" in row["last_error"]

    clock.now += timedelta(seconds=2)
    await drain(d, clock)
    assert len(fake.books.saves) == 1 and list(fake.books.receivables) == ["AR00000001"]  # found, not saved again
    assert fake.books.receivables["AR00000001"].status == "C"
    assert [(r["status"], r["attempts"]) for r in await k3_rows(db)] == [("delivered", 1)]
    assert [b["bill_no"] for b in await bills_of(db, no)] == ["AR00000001"]


async def test_k3_unreachable_before_it_accepted_is_retried_and_books_once(
    bus: MessageBus, db: Database, fake: FakeK3, sender: K3BooksSender, clock: Clock
) -> None:
    await shipped(bus)
    fake.fail_books_next("http", path=SAVE_PATH)
    fake.fail_books_next("response_error", path=SAVE_PATH)
    await drain(dispatcher(db, sender, clock), clock)
    assert list(fake.books.receivables) == ["AR00000001"]
    assert [(r["status"], r["attempts"]) for r in await k3_rows(db)] == [("delivered", 2)]


async def test_k3_refusing_the_bill_is_finances_task_card_with_k3s_own_message(
    bus: MessageBus, db: Database, fake: FakeK3, sender: K3BooksSender, clock: Clock
) -> None:
    async with UnitOfWork(db) as uow:
        await uow.users.upsert(User("fin1", "周敏", frozenset({"finance"})), clock())
        await uow.commit()
    fake.books.known_customers = {"CUST-9999"}
    no = await shipped(bus)
    await drain(dispatcher(db, sender, clock), clock, passes=2)

    k3_message = "“客户”字段的值“C-4S-01”在系统中不存在或未审核"
    [row] = await k3_rows(db)
    assert (row["status"], row["attempts"], fake.books.receivables) == ("dead", 1, {})
    assert k3_message in row["last_error"]
    cards = await rows(db, t.outbox, t.outbox.c.channel == "chat", t.outbox.c.recipient == "fin1")
    [card] = [r["payload"] for r in cards]
    assert card["title"] == "金蝶记账失败" and f"订单 {no} 的应收单未记入 K3" in card["description"]
    assert ["K3 原话", f"K3 拒绝：{k3_message}"] in card["fields"]
    assert card["buttons"] == [{"key": f"status {no}", "text": "查询订单", "style": 1}]
    [incident] = await rows(db, t.exceptions, t.exceptions.c.kind == "k3_failed")
    assert incident["order_no"] == no and k3_message in incident["message"]
    assert await K3DeadRows(db, clock=clock).report() == 0  # told once


async def test_a_refused_audit_keeps_the_saved_number_on_the_order_and_tells_finance(
    bus: MessageBus, db: Database, fake: FakeK3, sender: K3BooksSender, clock: Clock
) -> None:
    async with UnitOfWork(db) as uow:
        await uow.users.upsert(User("fin1", "周敏", frozenset({"finance"})), clock())
        await uow.commit()
    fake.books.refuse_next("audit", "当前单据存在审批流，不能直接审核")
    no = await shipped(bus)
    await drain(dispatcher(db, sender, clock), clock, passes=2)
    [stored] = await bills_of(db, no)
    assert (stored["bill_no"], stored["status"]) == ("AR00000001", "B")
    [row] = await k3_rows(db)
    assert row["status"] == "dead" and row["last_error"] == "K3 AR00000001 已保存，审核被拒：当前单据存在审批流，不能直接审核"
    assert "应收单 AR00000001（审核中）" in await shown(db, no)


async def test_an_approved_refund_books_the_red_receivable(
    bus: MessageBus, db: Database, fake: FakeK3, sender: K3BooksSender, clock: Clock
) -> None:
    whole = await shipped(bus, "DY1001", qty=1)
    part = await shipped(bus, "DY1002", qty=2)
    await bus.handle(c.OpenAfterSale(whole, "refund", "不想要了", 19_900, by="api", via="api"))  # small: approved
    await bus.handle(c.OpenAfterSale(part, "refund", "少发一件", 5_000, by="api", via="api"))
    await drain(dispatcher(db, sender, clock), clock)

    reds = [b for b in fake.books.receivables.values() if b.red]
    assert [(b.header["FAR_Remark"].split(" 订单 ")[1], b.lines, b.header["FDocumentStatus"]) for b in reds] == [
        (whole, [("BP-001", -1, 199.0)], "C"), (part, [("BP-001", -1, 50.0)], "C")]
    [blue, red] = await bills_of(db, whole)
    assert (blue["kind"], red["kind"], red["ref"].startswith("AS")) == ("receivable", "red_receivable", True)
    assert f"红字应收单 {red['bill_no']}（已审核，售后单 {red['ref']}）" in await shown(db, whole)


async def test_without_settings_rows_are_set_aside_then_booked_once_configured(
    bus: MessageBus, db: Database, fake: FakeK3, sender: K3BooksSender, clock: Clock
) -> None:
    no = await shipped(bus)
    await dispatcher(db, UnconfiguredBooks(), clock).run_once()
    [row] = await k3_rows(db)
    assert (row["status"], row["attempts"]) == ("unconfigured", 0)
    assert row["last_error"].startswith("not configured: ORDERBOT_K3__SERVER_URL")
    assert fake.books.saves == []

    assert await revive_unconfigured(db, clock()) == 1
    await drain(dispatcher(db, sender, clock), clock)
    assert [b["bill_no"] for b in await bills_of(db, no)] == ["AR00000001"]


async def test_a_replacement_with_nothing_to_charge_books_nothing(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(replace(create_cmd("DY1001"), lines=(c.LineInput("BP-001", 1, 0, "刹车片"),)))
    await drive(bus, order.order_no, "pick", "check", "pack")
    await drive(bus, order.order_no, "ship", waybill="SF1")
    assert await k3_rows(db) == []


async def test_the_session_login_books_too_and_logs_in_again_once_when_k3_lost_the_session(
    bus: MessageBus, db: Database, fake: FakeK3, clock: Clock
) -> None:
    async with httpx.AsyncClient(timeout=0.3) as http:
        k3 = client(fake, http, "session")
        d = dispatcher(db, K3BooksSender(K3Books(k3, BooksConfig("101", audit=False, submit=False)), db, clock=clock),
                       clock)
        await shipped(bus, "DY1001")
        await drain(d, clock)
        fake.lose_sessions()  # an application-pool recycle between two documents
        await shipped(bus, "DY1002")
        await drain(d, clock)
    assert [(b.status, b.header["FAR_Remark"][:11]) for b in fake.books.receivables.values()] == [
        ("A", "orderbot 发货"), ("A", "orderbot 发货")]  # saved only: neither submitted nor audited
    assert (fake.logins, fake.refused, fake.books.submits) == (2, ["session"], [])
    assert [(r["status"], r["attempts"]) for r in await k3_rows(db)] == [("delivered", 0), ("delivered", 0)]
