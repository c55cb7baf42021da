"""One customer on SQLite and PostgreSQL: keys, merges (orders, keys, holds moved; audited), conflicts flagged,
the customer's other orders in `查询`, and one order per channel + external id whatever the path."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from domain import commands as c
from domain.clock import utcnow
from domain.customers import CustomerKeys
from domain.users import User
from handlers.bus import MessageBus
from handlers.chat_orders import status_text
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from tests.integration.helpers import rows, stock
from tests.integration.test_import import DOUYIN, env, orders_in, write_csv  # noqa: F401

LINE = (c.LineInput("BP-001", 1, 19_900, "刹车片"),)
PHONE, E164, OPENID = "13800138000", "+8613800138000", "oWx-1"


def order(external_id: str, *, customer_id: str = "", name: str = "张三", channel: str = "douyin", paid: bool = False,
          **keys: str) -> c.CreateOrder:
    return c.CreateOrder(channel=channel, external_id=external_id, customer_id=customer_id, customer_name=name,
                         address="上海市浦东新区张杨路500号", lines=LINE, paid=paid, by="api", via="api",
                         store="SH01", customer=CustomerKeys(name=name, **keys))


async def place(bus: MessageBus, cmd: c.CreateOrder) -> Any:
    placed, _ = await bus.handle(cmd)
    return placed


async def add_service(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        await uow.users.upsert(User("kf1", "客服小李", frozenset({"service"})), utcnow())
        await uow.commit()


async def test_keys_that_meet_merge_orders_keys_and_hold_into_the_older(bus: MessageBus, db: Database) -> None:
    c1 = (await place(bus, order("DY1", phone=PHONE))).customer_id
    c2 = (await place(bus, order("MP1", openid=OPENID, channel="miniprogram"))).customer_id
    async with UnitOfWork(db) as uow:
        await uow.customers.hold({c2: "签收异常，待核实"}, utcnow())
        await uow.commit()
    both = await place(bus, order("MP2", phone=PHONE, openid=OPENID, channel="miniprogram"))
    assert (c1, c2, both.customer_id) == ("C00000001", "C00000002", "C00000001")
    assert {o["external_id"]: o["customer_id"] for o in await rows(db, t.orders)} == {"DY1": c1, "MP1": c1, "MP2": c1}
    assert {(k["kind"], k["value"], k["customer_id"]) for k in await rows(db, t.customer_keys)} == {
        ("phone", E164, c1), ("openid", OPENID, c1)}
    merged = {r["customer_id"]: (r["merged_into"], r["settlement_hold"]) for r in await rows(db, t.customers)}
    assert merged == {c1: (None, True), c2: (c1, False)}  # the hold went with the orders
    audit = [(r["entity"], r["entity_id"], r["action"], r["from_state"], r["to_state"], r["actor"], r["via"])
             for r in await rows(db, t.audit_log, t.audit_log.c.entity == "customer")]
    assert audit == [("customer", c1, "merge_key", c2, c1, "api", "api"), ("customer", c2, "merge", c2, c1, "api", "api")]
    # an id merged away still names the customer it went to
    assert (await place(bus, order("DY9", customer_id=c2))).customer_id == c1


async def test_a_conflict_is_a_service_exception_and_no_merge(bus: MessageBus, db: Database) -> None:
    await add_service(db)
    c1 = (await place(bus, order("DY1", phone=PHONE, member_card="VIP1"))).customer_id
    second = await place(bus, order("DY2", name="李四", phone=PHONE, member_card="VIP2"))
    assert second.customer_id == c1  # the order goes on with the first match
    holder = {k["value"]: k["customer_id"] for k in await rows(db, t.customer_keys)}["VIP2"]
    assert holder != c1
    assert all(r["merged_into"] is None for r in await rows(db, t.customers))
    [incident] = await rows(db, t.exceptions)
    assert incident["kind"] == "customer_conflict" and c1 in incident["message"] and holder in incident["message"]
    assert "VIP2" in incident["message"]
    [push] = [r for r in await rows(db, t.outbox) if r["recipient"] == "kf1"]
    assert "客户冲突" in str(push["payload"])


async def test_status_shows_the_customers_other_orders_on_every_channel(bus: MessageBus, db: Database) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    first = await place(bus, order("DY1", phone=PHONE, paid=True))
    await place(bus, order("MP1", phone=PHONE, openid=OPENID, channel="miniprogram"))
    last = await place(bus, order("K1", customer_id="", channel="k3", k3_customer="K3-778", phone=PHONE))
    await place(bus, order("DY2", phone="13900139000"))  # another customer
    async with UnitOfWork(db) as uow:
        text = await status_text(last, uow, datetime.now(UTC))
    assert f"该客户其他订单：OB00000002(小程序·待支付) {first.order_no}(抖店·已拆单) 共2单" in text


def test_the_same_douyin_order_via_rest_then_import_stays_one_order(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    import asyncio

    from handlers.bootstrap import build_bus
    from handlers.bus import Deps

    async def by_rest() -> str:
        database = Database(env)
        bus = build_bus(database, Deps())
        placed = await place(bus, order("6912345", phone=PHONE, douyin_buyer="buyer-1"))
        await database.dispose()
        return str(placed.customer_id)

    customer = asyncio.run(by_rest())
    rows_ = [["6912345", "buyer-1", "张三", PHONE, "上海市浦东新区张杨路500号", "SH01", "BP-001", "刹车片", "1", "199.00", "待付款"],
             ["6912346", "buyer-1", "张三", "12345", "上海市浦东新区张杨路500号", "SH01", "BP-001", "刹车片", "1", "199.00", "待付款"]]
    path = write_csv(tmp_path / "douyin.csv", DOUYIN, rows_, "gb18030")
    assert main(["orders", "import", str(path)]) == 0
    assert "新建 1，已存在 1" in capsys.readouterr().out
    orders = orders_in(env)
    assert [(o["external_id"], o["customer_id"]) for o in orders] == [("6912345", customer), ("6912346", customer)]
