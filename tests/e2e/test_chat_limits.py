"""Arguments past their limits, through the whole app: each message is answered in one Chinese sentence and
marked processed, nothing changes, nothing is logged at ERROR, and a start-up replays none of them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.keys import DB, INBOUND_QUEUE
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork
from tests.e2e.conftest import Chat
from tests.e2e.harness import later

CASES = [
    ("sup1", "确认 " + "1" * 25, "异常编号太长（最多 9 个字符）。"),
    ("sup1", "解决 " + "9" * 25 + " 已处理", "异常编号太长（最多 9 个字符）。"),
    ("sup1", "确认 ٣", "异常编号格式不对，应为数字，如 12。"),
    ("sup1", "解决 三", "异常编号格式不对，应为数字，如 12。"),
    ("wh1", "打包 {order} " + "SF" * 50, "运单号太长（最多 64 个字符）。"),
    ("wh1", "查询 " + "A" * 300, "单号太长（最多 64 个字符）。"),
    ("wh1", "拣货 " + "B" * 5000, "单号太长（最多 64 个字符）。"),
    ("cs1", "改地址 {order} " + "上海市浦东新区张杨路" * 500, "地址太长（最多 500 个字符）。"),
    ("sup1", "拒绝 AS000001 " + "不" * 600, "原因太长（最多 500 个字符）。"),
]


@pytest.mark.parametrize(("user", "text", "answer"), CASES, ids=[c[1][:8] for c in CASES])
async def test_an_argument_past_its_limit_is_answered_and_processed(
    chat: Chat, user: str, text: str, answer: str, caplog: pytest.LogCaptureFixture
) -> None:
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    await chat.add_user("sup1", "李敏", "supervisor")
    await chat.add_user("cs1", "刘洋", "service")
    order_no = await chat.order()
    assert await chat.say(user, text.format(order=order_no), msg_id="4242") == 200
    await chat.settle()
    assert chat.last(user) == answer
    async with chat.app[DB].engine.connect() as conn:
        processed = (await conn.execute(select(t.inbound_messages.c.processed_at))).scalar_one()
    assert processed is not None
    async with UnitOfWork(chat.app[DB]) as uow:
        order = await uow.orders.get(order_no)
    assert order is not None and order.state == "split" and order.address == "上海市浦东新区张杨路500号"
    assert await chat.app[INBOUND_QUEUE].sweep(now=later()) == 0
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
