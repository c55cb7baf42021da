"""One table of chat-command cases, run on WeCom and on DingTalk (and on SQLite and PostgreSQL).

Each case: who types what to an order brought to a given state; what the reply says and which state the
order is in afterwards. The same core answers both platforms; only the edge adapters differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.keys import DB
from domain import commands as c
from integrations.db.uow import UnitOfWork
from tests.e2e.conftest import Chat
from tests.e2e.dingtalk_harness import Ding

Talk = Chat | Ding

STEPS = {  # how to bring a fresh split order to a state, as the warehouse would
    "split": (),
    "picking": ("pick",),
    "packed": ("pick", "check", "pack"),
    "shipped": ("pick", "check", "pack", "ship"),
}


@dataclass(frozen=True)
class Case:
    name: str
    state: str  # the order's state before the message
    user: str
    text: str  # "{no}" is the order number
    reply: str  # a fragment the reply must contain
    after: str  # the order's state after the message


CASES = [
    Case("status by anyone", "picking", "cs1", "查询 {no}", "拣货中", "picking"),
    Case("pick allowed", "split", "wh1", "拣货 {no}", "质检", "picking"),
    Case("pick in english", "split", "wh1", "pick {no}", "质检", "picking"),
    Case("check allowed", "picking", "wh1", "质检 {no}", "打包", "quality_check"),
    Case("ship allowed with waybill", "packed", "wh1", "发货 {no} SF9988776655", "已发货", "shipped"),
    Case("supervisor may ship", "packed", "sup1", "发货 {no}", "已发货", "shipped"),
    Case("ship refused for role", "packed", "cs1", "发货 {no}", "只有", "packed"),
    Case("pick refused for another store", "split", "wh2", "拣货 {no}", "SH01", "split"),
    Case("ship refused for state", "split", "wh1", "发货 {no} SF1", "已拆单", "split"),
    Case("address refused after shipping", "shipped", "cs1", "改地址 {no} 上海市徐汇区漕溪北路1号",
         "订单已发货，不能改地址", "shipped"),
    Case("address allowed before shipping", "picking", "cs1", "改地址 {no} 上海市徐汇区漕溪北路1号",
         "改", "picking"),
    Case("unknown order", "split", "wh1", "拣货 OB99999999", "找不到订单 OB99999999", "split"),
    Case("missing argument", "split", "wh1", "拣货", "缺少", "split"),
    Case("unknown command suggests", "split", "wh1", "发或 {no}", "发货", "split"),
    Case("exceptions for supervisors", "split", "sup1", "异常", "异常", "split"),
    Case("exceptions refused for warehouse", "split", "wh1", "异常", "只有", "split"),
    Case("summary for managers", "split", "mgr1", "概况", "今日", "split"),
    Case("approve refused for warehouse", "split", "wh1", "同意 AS000001", "只有", "split"),
    Case("approve unknown case", "split", "sup1", "同意 AS999999", "找不到售后单", "split"),
]


@pytest.fixture(params=["wecom", "dingtalk"])
def talk(request: pytest.FixtureRequest, db_url: str) -> Talk:
    harness: Talk = request.getfixturevalue("chat" if request.param == "wecom" else "ding")
    return harness


async def add_staff(harness: Talk) -> None:
    await harness.add_user("wh1", "王强", "warehouse", store="SH01")
    await harness.add_user("wh2", "赵磊", "warehouse", store="HZ01")
    await harness.add_user("sup1", "李敏", "supervisor")
    await harness.add_user("mgr1", "王芳", "manager")
    await harness.add_user("cs1", "刘洋", "service")


async def order_in(talk: Talk, state: str) -> str:
    no = await talk.order()
    for trigger in STEPS[state]:
        await talk.handle(c.FireOrderTrigger(no, trigger, by="wh1", via="api",
                                             waybill="SF1234567890" if trigger == "pack" else None))
    return no


async def state_of(talk: Talk, order_no: str) -> str:
    async with UnitOfWork(talk.app[DB]) as uow:
        order = await uow.orders.get(order_no)
    assert order is not None
    return order.state


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_command(talk: Talk, case: Case) -> None:
    await add_staff(talk)
    no = await order_in(talk, case.state)
    before = len(talk.received(case.user))
    await talk.say(case.user, case.text.format(no=no))
    await talk.settle()
    replies = talk.received(case.user)[before:]
    assert replies, f"{case.user} got no answer"
    assert any(case.reply in r for r in replies), replies
    assert await state_of(talk, no) == case.after
