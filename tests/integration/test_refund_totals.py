"""Refund rules per order through the bus and the REST API, on SQLite and PostgreSQL: split or repeated requests
never pass what was paid or dodge an approval line; nothing on an unpaid order; a split order's parent and
children are one order; two requests at once are counted one after the other."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.keys import DB
from config.settings import ApiSettings, Settings
from domain import commands as c
from domain.clock import utcnow
from domain.errors import DomainError, GuardRefused, InvalidInput
from domain.users import User
from handlers.bus import MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from tests.integration.helpers import create_cmd, drive, rows, stock
from tests.integration.test_api import add_store

STAFF = (User("sup1", "李敏", frozenset({"supervisor"})), User("sup2", "张伟", frozenset({"supervisor"})),
         User("mgr1", "王芳", frozenset({"manager"})), User("fin1", "陈静", frozenset({"finance"})),
         User("cs1", "刘洋", frozenset({"service"})))


async def add_staff(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        for user in STAFF:
            await uow.users.upsert(user, utcnow())
        await uow.commit()


async def paid_order(bus: MessageBus, external_id: str = "DY1", *, price_fen: int = 25_600, qty: int = 1,
                     paid: bool = True) -> str:
    await stock(bus, "SH01", "BP-001", 1_000)
    cmd = create_cmd(external_id, qty=qty, paid=paid)
    cmd = c.CreateOrder(**{**cmd.__dict__, "lines": (c.LineInput("BP-001", qty, price_fen, "刹车片"),)})
    order, _ = await bus.handle(cmd)
    return str(order.order_no)


async def refund(bus: MessageBus, order_no: str, amount_fen: int) -> Any:
    return await bus.handle(c.OpenAfterSale(order_no, "refund", "刹车片异响", amount_fen, by="cs1", via="api"))


async def texts_to(db: Database, recipient: str) -> list[str]:
    """Each message queued for `recipient`, as the text of its whole payload (a card's fields included)."""
    found = await rows(db, t.outbox, t.outbox.c.recipient == recipient)
    return [json.dumps(r["payload"], ensure_ascii=False) for r in found]


async def test_three_199_refunds_on_a_256_order_approve_once(bus: MessageBus, db: Database) -> None:
    await add_staff(db)
    no = await paid_order(bus)
    first = await refund(bus, no, 19_900)
    assert first.state == "approved"
    for _ in range(2):
        with pytest.raises(InvalidInput) as refused:
            await refund(bus, no, 19_900)
        assert "可退金额 ¥57.00" in refused.value.reason
    assert [(r["amount_fen"], r["state"]) for r in await rows(db, t.aftersales)] == [(19_900, "approved")]
    assert len([x for x in await texts_to(db, "fin1") if "已同意退款" in x]) == 1
    # what is left is still there, and a request for it is over the auto line in total: a supervisor decides
    rest = await refund(bus, no, 5_700)
    assert rest.state == "pending_approval"
    assert any("待审批" in x for x in await texts_to(db, "sup1"))


async def test_splitting_a_refund_does_not_dodge_the_auto_approve_line(bus: MessageBus, db: Database) -> None:
    await add_staff(db)
    no = await paid_order(bus, price_fen=19_900, qty=2)  # ¥398
    assert (await refund(bus, no, 10_000)).state == "approved"
    assert (await refund(bus, no, 10_000)).state == "approved"  # ¥200.00 in all: exactly the line
    third = await refund(bus, no, 1)
    assert third.state == "pending_approval"  # ¥200.01 in all
    assert len(await texts_to(db, "fin1")) == 2


async def test_splitting_a_refund_does_not_dodge_the_managers_review(bus: MessageBus, db: Database) -> None:
    await add_staff(db)
    no = await paid_order(bus, price_fen=100_000, qty=4)  # ¥4,000
    first = await refund(bus, no, 150_000)
    second = await refund(bus, no, 50_001)  # ¥2,000.01 in all
    assert (first.state, second.state) == ("pending_approval", "pending_approval")
    assert not any("经理复核" in x for x in await texts_to(db, "sup1") if first.aftersale_no in x)
    _, done = await bus.handle(c.ApproveAfterSale(first.aftersale_no, by="sup1", via="wecom"))
    assert done is True
    _, done = await bus.handle(c.ApproveAfterSale(second.aftersale_no, by="sup1", via="wecom"))
    assert done is False  # the order's total is above ¥2,000: a manager reviews it too
    assert any(second.aftersale_no in x for x in await texts_to(db, "mgr1"))
    with pytest.raises(GuardRefused, match="还需经理复核"):
        await bus.handle(c.ApproveAfterSale(second.aftersale_no, by="sup2", via="wecom"))
    _, done = await bus.handle(c.ApproveAfterSale(second.aftersale_no, by="mgr1", via="wecom"))
    assert done is True
    [row] = await rows(db, t.aftersales, t.aftersales.c.aftersale_no == second.aftersale_no)
    assert [a["role"] for a in row["approvals"]] == ["supervisor", "manager"]


async def test_exactly_2000_in_total_needs_one_supervisor(bus: MessageBus, db: Database) -> None:
    await add_staff(db)
    no = await paid_order(bus, price_fen=100_000, qty=4)
    first = await refund(bus, no, 150_000)
    second = await refund(bus, no, 50_000)  # ¥2,000.00 in all
    for case in (first, second):
        _, done = await bus.handle(c.ApproveAfterSale(case.aftersale_no, by="sup1", via="wecom"))
        assert done is True
    assert await texts_to(db, "mgr1") == []


async def test_a_rejected_request_frees_what_it_held(bus: MessageBus, db: Database) -> None:
    await add_staff(db)
    no = await paid_order(bus)
    held = await refund(bus, no, 25_000)
    with pytest.raises(InvalidInput, match="¥6.00"):
        await refund(bus, no, 19_900)  # the pending request holds its amount
    await bus.handle(c.RejectAfterSale(held.aftersale_no, by="sup1", via="wecom", reason="已超过退货期"))
    assert (await refund(bus, no, 19_900)).state == "approved"  # the rejected ¥250 claims nothing


async def test_no_after_sale_on_an_unpaid_or_never_paid_cancelled_order(bus: MessageBus, db: Database) -> None:
    await add_staff(db)
    unpaid = await paid_order(bus, "DY1", paid=False)
    with pytest.raises(GuardRefused, match="尚未支付"):
        await refund(bus, unpaid, 100)
    await drive(bus, unpaid, "cancel")
    with pytest.raises(GuardRefused, match="尚未支付"):
        await refund(bus, unpaid, 100)
    assert await rows(db, t.aftersales) == []
    cancelled_after_paying = await paid_order(bus, "DY2")
    await drive(bus, cancelled_after_paying, "cancel")
    assert (await refund(bus, cancelled_after_paying, 100)).state == "approved"


async def test_a_split_orders_parent_and_children_share_what_was_paid(bus: MessageBus, db: Database) -> None:
    await add_staff(db)
    await stock(bus, "SH01", "BP-001", 5)
    await stock(bus, "SH02", "OF-002", 5)
    cmd = create_cmd("DY9", store=None)
    cmd = c.CreateOrder(**{**cmd.__dict__, "lines": (c.LineInput("BP-001", 1, 15_000, "刹车片"),
                                                      c.LineInput("OF-002", 1, 10_000, "机滤"))})
    parent, _ = await bus.handle(cmd)
    children = [r["order_no"] for r in await rows(db, t.orders, t.orders.c.parent_no == parent.order_no)]
    assert len(children) == 2
    await refund(bus, parent.order_no, 20_000)
    with pytest.raises(InvalidInput, match="可退金额 ¥50.00"):
        await refund(bus, children[1], 10_000)
    assert (await refund(bus, children[1], 5_000)).state == "pending_approval"  # ¥250 in all
    with pytest.raises(InvalidInput, match="可退金额 ¥0.00"):
        await refund(bus, children[0], 1)


async def test_two_requests_at_once_cannot_both_fit(bus: MessageBus, db: Database) -> None:
    await add_staff(db)
    no = await paid_order(bus)
    results = await asyncio.gather(*(refund(bus, no, 19_900) for _ in range(3)), return_exceptions=True)
    opened = [r for r in results if not isinstance(r, BaseException)]
    assert all(isinstance(r, DomainError) for r in results if isinstance(r, BaseException)), results
    assert len(opened) == 1
    assert sum(r["amount_fen"] for r in await rows(db, t.aftersales)) == 19_900


# --- what an API caller sees ---

AUTH = {"Authorization": "Bearer t0k"}


@pytest.fixture
async def client(aiohttp_client: Any, db_url: str) -> TestClient[web.Request, web.Application]:
    app = create_app(Settings(database_url=db_url, api=ApiSettings(token="t0k")))
    client = await aiohttp_client(app)
    await add_store(app)  # stock may be set only for a store that exists
    return client


async def api_order(client: TestClient[web.Request, web.Application], *, paid: bool) -> str:
    resp = await client.put("/api/v1/inventory/SH01/BP-001", json={"on_hand": 10}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    body = {"channel": "douyin", "external_id": f"DY-{paid}", "address": "上海市浦东新区张杨路500号",
            "customer": {"id": "C-4S-01", "name": "浦东4S店", "phone": "13800000000"}, "store": "SH01",
            "paid": paid, "lines": [{"sku": "BP-001", "qty": 1, "unit_price": "256.00", "name": "刹车片"}]}
    resp = await client.post("/api/v1/orders", json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["order_no"])


async def test_the_api_refuses_a_refund_over_what_is_left_and_on_an_unpaid_order(
    client: TestClient[web.Request, web.Application],
) -> None:
    no = await api_order(client, paid=True)
    answers = []
    for _ in range(3):
        resp = await client.post("/api/v1/aftersales", headers=AUTH,
                                 json={"order_no": no, "kind": "refund", "reason": "异响", "amount": "199.00"})
        answers.append((resp.status, await resp.json()))
    assert [status for status, _ in answers] == [201, 400, 400]
    assert answers[0][1]["state"] == "approved"
    assert answers[1][1]["error"] == "invalid_input" and "¥57.00" in answers[1][1]["message"]
    unpaid = await api_order(client, paid=False)
    resp = await client.post("/api/v1/aftersales", headers=AUTH,
                             json={"order_no": unpaid, "kind": "refund", "reason": "异响", "amount": "1.00"})
    assert resp.status == 409 and "尚未支付" in (await resp.json())["message"]
    stored = await rows(client.app[DB], t.aftersales)
    assert [(r["order_no"], r["amount_fen"]) for r in stored] == [(no, 19_900)]
