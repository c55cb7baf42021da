"""Forged or borrowed DingTalk robot callbacks, on SQLite and PostgreSQL: DingTalk signs only the timestamp, so a
captured timestamp+sign must not carry another body, the window is short, the body must name our robot, and a
reply never goes to a sessionWebhook off DingTalk's hosts (it is pushed through batchSend instead)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.keys import DB
from domain import commands as c
from domain.aftersale import AfterSale
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork
from integrations.fakes.dingtalk import FakeDingTalk
from tests.e2e.dingtalk_harness import (  # noqa: F401 (fixtures)
    Ding,
    ding_alone_fixture,
    ding_fixture,
    fake_dingtalk_fixture,
    staff_id,
)

ADDRESS = "上海市浦东新区张杨路500号"  # the customer's address the harness orders carry


async def inbox_rows(d: Ding) -> int:
    async with d.app[DB].engine.connect() as conn:
        return len((await conn.execute(select(t.inbound_messages))).all())


async def pending_refund(d: Ding) -> str:
    """A ¥1,500 refund waiting for a supervisor."""
    await d.add_user("sup1", "李敏", "supervisor")
    await d.add_user("cs1", "刘洋", "service")
    await d.add_user("wh1", "王强", "warehouse", store="SH01")
    order_no = await d.order("DY1001", qty=3, amount_fen=100_000)
    case = await d.handle(c.OpenAfterSale(order_no, "refund", "尺寸不对", 150_000, by="cs1", via="dingtalk"))
    await d.settle()
    return str(case.aftersale_no)


async def load(d: Ding, aftersale_no: str) -> AfterSale:
    async with UnitOfWork(d.app[DB]) as uow:
        found = await uow.aftersales.get(aftersale_no)
    assert found is not None
    return found


async def test_a_captured_sign_cannot_carry_a_supervisors_approval(ding: Ding) -> None:
    no = await pending_refund(ding)
    headers, body = ding.fake.robot_message(staff_id("wh1"), "帮助", "msgWH1", "cid-wh1")
    assert await ding.post(headers, body) == 200  # the warehouse man's own message, seen on the way
    forged = {**body, "senderStaffId": staff_id("sup1"), "senderNick": "李敏", "msgId": "msgFORGED",
              "conversationId": "cid-sup1", "text": {"content": f"同意 {no}"}}
    assert await ding.post(headers, forged) == 403
    await ding.settle()
    assert (await load(ding, no)).state == "pending_approval"
    assert await inbox_rows(ding) == 1
    assert not [m for m in ding.received("sup1") if no in m and "已同意" in m]


async def test_the_same_request_again_does_nothing_twice(ding: Ding) -> None:
    await ding.add_user("wh1", "王强", "warehouse", store="SH01")
    headers, body = ding.fake.robot_message(staff_id("wh1"), "帮助", "msgONCE", "cid-wh1")
    assert [await ding.post(headers, body) for _ in range(3)] == [200, 200, 200]  # DingTalk's retry is welcome
    await ding.settle()
    assert len(ding.received("wh1")) == 1 and await inbox_rows(ding) == 1


async def test_a_timestamp_older_than_the_replay_window_is_refused(ding: Ding) -> None:
    await ding.add_user("wh1", "王强", "warehouse", store="SH01")
    window_ms = ding.settings.dingtalk.replay_window_s * 1000
    assert window_ms == 300_000  # five minutes unless configured; DingTalk itself would allow an hour
    now_ms = int(time.time() * 1000)
    for stamp in (now_ms - window_ms - 5_000, now_ms + window_ms + 5_000, now_ms - 1_800_000):
        headers, body = ding.fake.robot_message(staff_id("wh1"), "帮助", f"msg{stamp}", "cid-wh1", timestamp_ms=stamp)
        assert await ding.post(headers, body) == 403
    headers, body = ding.fake.robot_message(staff_id("wh1"), "帮助", "msgFRESH", "cid-wh1",
                                            timestamp_ms=now_ms - window_ms + 30_000)
    assert await ding.post(headers, body) == 200
    await ding.settle()
    assert await inbox_rows(ding) == 1


async def test_a_message_for_another_robot_is_refused(ding: Ding) -> None:
    no = await pending_refund(ding)
    for robot in ({"robotCode": "dingOTHERROBOT"}, {"robotCode": ""}, {"robotCode": None}):
        headers, body = ding.fake.robot_message(staff_id("sup1"), f"同意 {no}", f"msg{robot}", "cid-sup1")
        assert await ding.post(headers, {**body, **robot}) == 403, robot
    headers, body = ding.fake.robot_message(staff_id("sup1"), f"同意 {no}", "msgNOCODE", "cid-sup1")
    del body["robotCode"]
    assert await ding.post(headers, body) == 403
    await ding.settle()
    assert await inbox_rows(ding) == 0 and (await load(ding, no)).state == "pending_approval"


@pytest.fixture
async def elsewhere() -> AsyncIterator[FakeDingTalk]:
    """A server that would take a session-webhook reply, on a host the app was not told to trust."""
    async with FakeDingTalk() as fake:
        yield fake


def foreign_webhook(fake: FakeDingTalk, staff: str) -> str:
    return fake.session_webhook_url("cid-attacker", staff_id=staff).replace("127.0.0.1", "localhost")


async def test_a_reply_never_goes_to_a_webhook_off_the_allowed_hosts(ding: Ding, elsewhere: FakeDingTalk) -> None:
    """The tests allow 127.0.0.1 (the fake) only; "localhost" reaches the same machine but is not on the list. The
    answer, with the customer's name and address, is pushed to the asker's own staff id instead."""
    await ding.add_user("sup1", "李敏", "supervisor")
    order_no = await ding.order("DY1001")
    headers, body = ding.fake.robot_message(staff_id("sup1"), f"查询 {order_no}", "msgQ", "cid-sup1")
    body["sessionWebhook"] = foreign_webhook(elsewhere, staff_id("sup1"))
    assert await ding.post(headers, body) == 200
    await ding.settle()
    assert elsewhere.received == [] and elsewhere.requests == []
    [answer] = ding.fake.received
    assert (answer.via, answer.to) == ("batch", (staff_id("sup1"),)) and ADDRESS in ding.last("sup1")


async def test_a_stranger_naming_a_foreign_webhook_learns_nothing_there(ding: Ding, elsewhere: FakeDingTalk) -> None:
    """senderStaffId is looked up in our users: a stranger is refused, and the refusal goes to their staff id."""
    order_no = await ding.order("DY1001")
    headers, body = ding.fake.robot_message("staff-nobody", f"查询 {order_no}", "msgQ", "cid-nobody")
    body["sessionWebhook"] = foreign_webhook(elsewhere, "staff-nobody")
    assert await ding.post(headers, body) == 200
    await ding.settle()
    assert elsewhere.received == []
    [answer] = ding.fake.received
    assert answer.via == "batch" and "还没有开通订单助手" in str(answer.content) and ADDRESS not in str(answer.content)

