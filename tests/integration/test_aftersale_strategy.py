"""What an approved after-sale sets going, on SQLite and PostgreSQL: a refund voucher from finance (once), a
replacement order for an exchange the store can fill, a purchase request for one it cannot; and the reason's
category stored when the case is opened."""

from __future__ import annotations

import asyncio

import pytest

from domain import commands as c
from domain.aftersale import ApprovalPolicy
from domain.chat_commands import ApproveRefund
from domain.clock import utcnow
from domain.errors import GuardRefused, IllegalTransition
from domain.users import User
from handlers.bootstrap import build_bus
from handlers.bus import Deps, MessageBus
from handlers.chat_aftersales import approve_aftersale
from handlers.chat_router import run_pipeline
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.inbox_writer import InboxWriter
from integrations.db.uow import UnitOfWork
from tests.integration.helpers import create_cmd, inventory, rows, stock


async def add_users(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        for user in (User("sup1", "李敏", frozenset({"supervisor"})), User("sup2", "张伟", frozenset({"supervisor"})),
                     User("fin1", "陈静", frozenset({"finance"})), User("buy1", "周采", frozenset({"purchasing"})),
                     User("cs1", "刘洋", frozenset({"service"}))):
            await uow.users.upsert(user, utcnow())
        await uow.commit()


async def open_case(bus: MessageBus, db: Database, *, kind: str = "refund", amount_fen: int = 15_000,
                    on_hand: int = 10, reason: str = "用了两天就异响") -> str:
    await add_users(db)
    await stock(bus, "SH01", "BP-001", on_hand)
    order, _ = await bus.handle(create_cmd())  # 2 × ¥199.00, reserved in SH01
    aftersale = await bus.handle(c.OpenAfterSale(order.order_no, kind, reason, amount_fen, by="cs1", via="wecom"))
    return str(aftersale.aftersale_no)


async def outbox_to(db: Database, recipient: str) -> list[str]:
    found = await rows(db, t.outbox, t.outbox.c.recipient == recipient)
    return [str(r["payload"].get("text", r["payload"].get("title", ""))) for r in found]


async def test_opening_stores_the_reason_category(bus: MessageBus, db: Database) -> None:
    no = await open_case(bus, db, reason="包装压坏了，机油漏了")
    (row,) = await rows(db, t.aftersales, t.aftersales.c.aftersale_no == no)
    assert row["category"] == "物流损坏"
    opened = await rows(db, t.audit_log, t.audit_log.c.entity_id == no, t.audit_log.c.action == "open")
    assert opened[0]["detail"]["category"] == "物流损坏"


async def test_an_approved_refund_instructs_finance_once(bus: MessageBus, db: Database) -> None:
    no = await open_case(bus, db, amount_fen=30_000)
    await bus.handle(c.ApproveAfterSale(no, by="sup1", via="wecom"))
    with pytest.raises(IllegalTransition):
        await bus.handle(c.ApproveAfterSale(no, by="sup2", via="wecom"))
    told = await outbox_to(db, "fin1")
    assert len(told) == 1 and "退款 ¥300.00" in told[0] and "审批人：李敏" in told[0]
    assert await rows(db, t.orders, t.orders.c.channel == "aftersale") == []


async def test_a_small_exchange_in_stock_is_replaced_at_once(bus: MessageBus, db: Database) -> None:
    no = await open_case(bus, db, kind="exchange", amount_fen=10_000)
    (replacement,) = await rows(db, t.orders, t.orders.c.channel == "aftersale")
    assert (replacement["external_id"], replacement["state"], replacement["store"]) == (no, "split", "SH01")
    assert replacement["customer_id"] == "C-4S-01" and replacement["address"] == "上海市浦东新区张杨路500号"
    assert await inventory(db, "SH01", "BP-001") == (10, 4)  # the original 2 and the replacement's 2
    assert await outbox_to(db, "fin1") == []
    assert any(f"换货订单 {replacement['order_no']}" in text for text in await outbox_to(db, "cs1"))


async def test_an_exchange_out_of_stock_becomes_a_purchase_request(bus: MessageBus, db: Database) -> None:
    no = await open_case(bus, db, kind="exchange", amount_fen=30_000, on_hand=2)
    await bus.handle(c.ApproveAfterSale(no, by="sup1", via="wecom"))
    (request,) = await rows(db, t.exceptions)
    assert (request["kind"], request["sku"], request["store"]) == ("purchase_request", "BP-001", "SH01")
    (text,) = await outbox_to(db, "buy1")
    assert text.startswith(f"补货申请：BP-001 × 2，用于换货 {no}")
    assert await rows(db, t.orders, t.orders.c.channel == "aftersale") == []
    assert await outbox_to(db, "fin1") == []


async def test_the_manager_threshold_comes_from_the_policy(db: Database) -> None:
    """Settings.refund.dual_approval_limit becomes deps.policy: at ¥200 a ¥300 refund needs a manager too."""
    bus = build_bus(db, Deps(policy=ApprovalPolicy(auto_limit_fen=10_000, dual_limit_fen=20_000)))
    no = await open_case(bus, db, amount_fen=30_000)
    await bus.handle(c.ApproveAfterSale(no, by="sup1", via="wecom"))
    (row,) = await rows(db, t.aftersales, t.aftersales.c.aftersale_no == no)
    assert row["state"] == "pending_approval" and await outbox_to(db, "fin1") == []


def _click(user: str, no: str, code: str) -> ApproveRefund:
    return ApproveRefund(by=user, via="wecom", message_id=f"m-{code}", aftersale_no=no,
                         response_code=code, task_id=f"approve-{no}")


async def test_the_loser_of_a_simultaneous_approval_is_told_who_won(
    bus: MessageBus, db: Database, deps: Deps
) -> None:
    """Deterministic version of two clicks at once: the second writer's row update waits for the first
    commit, finds a newer version (Conflict) and answers with who approved. Row locks are PostgreSQL's."""
    if db.is_sqlite:
        pytest.skip("SQLite serialises writers before they read; the row-version race needs PostgreSQL")
    no = await open_case(bus, db, amount_fen=30_000)
    inbox = InboxWriter(db)
    for code in ("rc-1", "rc-2"):  # both clicks were acknowledged and stored
        assert await inbox.record("wecom", f"m-{code}", {}, utcnow())

    async def second() -> None:
        async with UnitOfWork(db) as uow:
            await run_pipeline(_click("sup2", no, "rc-2"), uow, deps, approve_aftersale)
            await uow.commit()

    async with UnitOfWork(db) as first:
        await run_pipeline(_click("sup1", no, "rc-1"), first, deps, approve_aftersale)
        racing = asyncio.create_task(second())
        await asyncio.sleep(0.3)  # sup2 has read the pending case and waits on the row sup1 updated
        assert not racing.done()
        await first.commit()
    with pytest.raises(GuardRefused, match=rf"售后单 {no} 已由 李敏 于 \d\d:\d\d 同意，无需重复处理。"):
        await racing
    (row,) = await rows(db, t.aftersales, t.aftersales.c.aftersale_no == no)
    assert [a["by"] for a in row["approvals"]] == ["sup1"]
    assert [r["dedup_key"] for r in await rows(db, t.outbox, t.outbox.c.kind == "card_update")] == ["card:rc-1"]
