"""`orderbot demo` in-process: the seeded story, and the chat console driving the real WeCom edge."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.demo import SEEDED, build_demo
from bot.demo_data import USERS
from bot.demo_seed import STOCK
from bot.keys import DB
from config.settings import Settings
from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork

Message = dict[str, Any]
CHAT = ("chat", "wecom_chat", "dingtalk_chat", "wecom_group")
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def demo(aiohttp_client: Any, sqlite_template: Path, tmp_path: Path) -> Client:
    db_path = tmp_path / "demo.db"
    shutil.copy(sqlite_template, db_path)  # migrated, as `reset_database` leaves it
    app, _fake = await build_demo(Settings(), db_path)
    client: Client = await aiohttp_client(app)  # the fake WeCom closes with the app
    await seeded_day_delivered(client)
    return client


async def seeded_day_delivered(client: Client, within_s: float = 180) -> None:
    """The seeded day's messages (hundreds of task cards) have gone out, so a test's answer is not timed behind
    them: no row is due any more (a person's rows held back by WeCom's per-minute cap wait for their minute)."""
    c = t.outbox.c
    deadline = asyncio.get_running_loop().time() + within_s
    while asyncio.get_running_loop().time() < deadline:
        async with client.app[DB].engine.connect() as conn:
            due = (await conn.execute(select(func.count()).select_from(t.outbox).where(
                c.status == "pending", c.channel.in_(CHAT), c.next_attempt_at <= utcnow()))).scalar_one()
        if not due:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the demo's seeded messages were not delivered within {within_s:g} s")


async def messages_of(client: Client, user: str) -> list[Message]:
    response = await client.get("/demo/api/messages", params={"user": user})
    assert response.status == 200
    return list((await response.json())["messages"])


async def wait_for(
    client: Client, user: str, found: Callable[[list[Message]], bool], within_s: float = 10
) -> list[Message]:
    """Poll as the page does until the background dispatcher has delivered what `found` looks for."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        got = await messages_of(client, user)
        if found(got):
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{user} did not receive the expected message; got {got}")
        await asyncio.sleep(0.1)


def cards(got: list[Message]) -> dict[str, Message]:
    return {m["card"]["task_id"]: m for m in got if m["msgtype"] == "template_card"}


async def test_seeding_tells_the_story(demo: Client) -> None:
    app = demo.app
    orders = app[SEEDED].orders
    async with UnitOfWork(app[DB]) as uow:
        users = {u.userid: u for u in await uow.users.list()}
        stock = {(store, sku): await uow.inventory.get(store, sku) for store, skus in STOCK.items() for sku in skus}
        states = {key: (await uow.orders.get(no)) for key, no in orders.items()}
        children = await uow.orders.children(orders["split"])
        aftersales = [await uow.aftersales.get(no) for no in app[SEEDED].aftersales]
        out_of_stock = (await uow.conn.execute(
            select(t.exceptions.c.order_no).where(t.exceptions.c.kind == "out_of_stock")
        )).scalars().all()

    assert set(users) == {u.userid for u in USERS}
    assert users["limin"].roles == {"manager"} and users["sup1"].roles == {"supervisor"}
    assert (users["wh1"].store, users["wh2"].store) == ("SH01", "HZ01")
    assert all(s is not None for s in stock.values())
    assert stock["HZ01", "BP-001"] is not None and stock["HZ01", "BP-001"].on_hand == 30 - 12  # shipped
    assert stock["SH01", "BP-001"] is not None and stock["SH01", "BP-001"].reserved == 1  # the new order

    assert {key: o.state for key, o in states.items() if o is not None} == {
        "new": "split", "picking": "picking", "packed": "packed", "shipped": "shipped", "split": "split",
        "out_of_stock": "paid", "unpaid": "pending_payment", "delivered": "delivered",
    }
    assert {o.channel for o in states.values() if o is not None} == {"douyin", "miniprogram", "k3"}
    packed = states["packed"]
    assert packed is not None and packed.waybill == "SF1402600003"
    assert sorted(c.store or "" for c in children) == ["HZ01", "SH01"]
    assert out_of_stock == [orders["out_of_stock"]]
    assert [(a.state, a.amount_fen) for a in aftersales if a is not None] == [
        ("pending_approval", 150_000), ("pending_approval", 280_000),
    ]


async def test_supervisor_sees_the_refund_cards_and_the_shortage(demo: Client) -> None:
    got = await wait_for(demo, "sup1", lambda m: len(cards(m)) == 2)
    first, second = demo.app[SEEDED].aftersales
    card = cards(got)[f"approve-{first}"]
    assert "1,500" in card["card"]["title"] and card["card"]["highlight"] and card["replaced"] is None
    assert [b["text"] for b in card["card"]["buttons"]] == ["同意", "拒绝"]
    assert "2,800" in cards(got)[f"approve-{second}"]["card"]["title"]
    assert any(m["msgtype"] == "markdown" and "缺货" in m["content"] for m in got)


async def test_console_says_help_through_the_wecom_edge(demo: Client) -> None:
    response = await demo.post("/demo/api/say", json={"user": "wh1", "text": "帮助"})
    assert response.status == 200, await response.text()

    got = await wait_for(demo, "wh1", lambda got: any("可以发这些命令" in m.get("content", "") for m in got))
    assert got[-1]["msgtype"] == "text" and "查询 <单号>" in got[-1]["content"]
    newer = await demo.get("/demo/api/messages", params={"user": "wh1", "after": str(got[-1]["index"])})
    assert (await newer.json())["messages"] == []


async def test_card_click_approves_and_the_card_shows_the_decision(demo: Client) -> None:
    first = demo.app[SEEDED].aftersales[0]
    card = cards(await wait_for(demo, "sup1", lambda m: len(cards(m)) == 2))[f"approve-{first}"]
    button = card["card"]["buttons"][0]

    response = await demo.post(
        "/demo/api/click", json={"user": "sup1", "key": button["key"], "task_id": card["card"]["task_id"]}
    )
    assert response.status == 200, await response.text()

    got = await wait_for(demo, "sup1", lambda m: bool(cards(m)[f"approve-{first}"]["replaced"]))
    assert "同意" in cards(got)[f"approve-{first}"]["replaced"]
    await wait_for(demo, "fin1", lambda got: any(first in m.get("content", "") for m in got))


async def test_console_page_and_users(demo: Client) -> None:
    page = await demo.get("/demo/console")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert 'id="user-picker"' in html and "/demo/api/say" in html

    users = (await (await demo.get("/demo/api/users")).json())["users"]
    wh1 = next(u for u in users if u["userid"] == "wh1")
    assert wh1 == {"userid": "wh1", "name": "王强", "roles": ["warehouse"], "role_names": ["仓管"],
                   "store": "SH01", "store_name": "上海浦东店"}
    assert users[0]["userid"] == "limin"


async def test_console_refuses_a_malformed_request(demo: Client) -> None:
    response = await demo.post("/demo/api/say", json={"user": "wh1"})
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_body"


async def test_demo_stores_are_registered_and_packing_takes_an_e_waybill(demo: Client) -> None:
    async with UnitOfWork(demo.app[DB]) as uow:
        stores = await uow.stores.list()
    assert len(stores) == 18 and all(s.address and s.phone for s in stores)
    no = demo.app[SEEDED].orders["picking"]
    for text in (f"质检 {no}", f"打包 {no}"):
        response = await demo.post("/demo/api/say", json={"user": "wh1", "text": text})
        assert response.status == 200, await response.text()

    got = await wait_for(demo, "wh1", lambda got: any("电子面单已取到" in m.get("content", "") for m in got), 60)
    assert any(f"订单 {no} 电子面单已取到：圆通速递 YT9" in m.get("content", "") for m in got)
    async with UnitOfWork(demo.app[DB]) as uow:
        order = await uow.orders.get(no)
        [label] = (await uow.conn.execute(select(t.outbox.c.payload).where(t.outbox.c.channel == "print"))).scalars()
    assert order is not None and order.waybill and label["label"]["sender"]["address"] == "上海市浦东新区川沙路1688号"
