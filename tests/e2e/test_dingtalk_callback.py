"""DingTalk's robot callback through the whole app: sign checks, refusals, de-duplication, replies, fan-out."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import select

from bot.keys import DB, INBOUND_QUEUE
from domain.chat import Reply
from handlers.bus import Deps
from handlers.notify import notify_user
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork
from integrations.fakes.dingtalk import BATCH_SEND_PATH, FakeDingTalk
from integrations.fakes.wecom import FakeWeCom
from tests.e2e.dingtalk_harness import (  # noqa: F401 (fixtures)
    Ding,
    ding_alone_fixture,
    ding_fixture,
    fake_dingtalk_fixture,
    staff_id,
)


async def inbox_rows(d: Ding) -> int:
    async with d.app[DB].engine.connect() as conn:
        return len((await conn.execute(select(t.inbound_messages))).all())


async def outbox(d: Ding, channel: str) -> list[dict[str, Any]]:
    async with d.app[DB].engine.connect() as conn:
        rows = await conn.execute(select(t.outbox).where(t.outbox.c.channel == channel).order_by(t.outbox.c.id))
        return [dict(r._mapping) for r in rows]


async def test_help_is_answered_through_the_session_webhook(ding: Ding, fake_wecom: FakeWeCom) -> None:
    await ding.add_user("wh1", "王强", "warehouse", store="SH01")
    assert await ding.say("wh1", "帮助") == 200
    await ding.settle()
    assert "发货" in ding.last("wh1")
    assert [m.via for m in ding.fake.received] == ["session"]
    assert fake_wecom.messages == []  # a reply goes back only where the question came from
    assert ding.fake.token_requests == 0  # the session webhook needs no token


async def test_the_answer_is_pushed_when_the_session_webhook_has_expired(ding: Ding) -> None:
    await ding.add_user("wh1", "王强", "warehouse", store="SH01")
    await ding.say("wh1", "帮助", session_ttl_s=30)  # inside the sender's safety margin
    await ding.settle()
    assert [(m.via, m.to) for m in ding.fake.received] == [("batch", (staff_id("wh1"),))]
    assert "发货" in ding.last("wh1")


async def test_a_webhook_refused_on_the_way_falls_back_to_batch_send(ding: Ding) -> None:
    await ding.add_user("wh1", "王强", "warehouse", store="SH01")
    await ding.say("wh1", "帮助")
    ding.fake.expire_sessions()  # still valid by the callback's clock, refused by DingTalk
    await ding.settle()
    assert [m.via for m in ding.fake.received] == ["batch"]


async def test_group_mention_is_answered_in_the_group(ding: Ding) -> None:
    await ding.add_user("sup1", "李敏", "supervisor")
    await ding.say("sup1", "帮助", group=True)
    await ding.settle()
    [answer] = ding.fake.received
    assert (answer.via, answer.conversation) == ("session", "cid-store-group")
    assert "查询" in ding.last("sup1")


async def test_bad_sign_is_refused_and_nothing_is_stored(ding: Ding) -> None:
    await ding.add_user("sup1", "李敏", "supervisor")
    headers, body = ding.fake.robot_message(staff_id("sup1"), "帮助", "msg1", "cid-1")
    headers["sign"] = ding.fake.sign(int(headers["timestamp"]) + 1)
    assert await ding.post(headers, body) == 403
    await ding.settle()
    assert ding.fake.received == [] and await inbox_rows(ding) == 0


async def test_stale_or_future_timestamp_is_refused(ding: Ding) -> None:
    await ding.add_user("sup1", "李敏", "supervisor")
    now_ms = int(time.time() * 1000)
    for stamp in (now_ms - 3_600_000 - 5_000, now_ms + 3_600_000 + 5_000):
        headers, body = ding.fake.robot_message(staff_id("sup1"), "帮助", f"msg{stamp}", "cid-1", timestamp_ms=stamp)
        assert await ding.post(headers, body) == 403
    await ding.settle()
    assert ding.fake.received == [] and await inbox_rows(ding) == 0


async def test_missing_headers_and_garbage_get_400(ding: Ding) -> None:
    _, body = ding.fake.robot_message(staff_id("sup1"), "帮助", "msg1", "cid-1")
    assert await ding.post({}, body) == 400
    assert await ding.post({"timestamp": "soon", "sign": "x"}, body) == 400
    headers = {"timestamp": str(int(time.time() * 1000))}
    headers["sign"] = ding.fake.sign(int(headers["timestamp"]))
    for raw in (b"not json", b"[1, 2]", b"[" * 30_000):
        response = await ding.client.post("/dingtalk/callback", headers=headers, data=raw)
        assert response.status == 400, raw[:10]
    assert await inbox_rows(ding) == 0


async def test_oversized_body_is_refused(ding: Ding) -> None:
    headers = {"timestamp": str(int(time.time() * 1000))}
    headers["sign"] = ding.fake.sign(int(headers["timestamp"]))
    big = json.dumps({"pad": "x" * (ding.settings.http.max_body_bytes + 1)})
    response = await ding.client.post("/dingtalk/callback", headers=headers, data=big)
    assert response.status == 413


async def test_callback_is_refused_when_dingtalk_is_not_configured(chat: Any, fake_dingtalk: FakeDingTalk) -> None:
    headers, body = fake_dingtalk.robot_message(staff_id("sup1"), "帮助", "msg1", "cid-1")
    response = await chat.client.post("/dingtalk/callback", headers=headers, json=body)
    assert response.status == 403


async def test_the_same_msgid_twice_is_answered_once(ding: Ding) -> None:
    await ding.add_user("sup1", "李敏", "supervisor")
    for _ in range(2):
        assert await ding.say("sup1", "帮助", msg_id="msgSAME") == 200
    await ding.settle()
    assert len(ding.received("sup1")) == 1
    assert await inbox_rows(ding) == 1


async def test_unknown_sender_is_refused_politely_on_dingtalk(ding: Ding, fake_wecom: FakeWeCom) -> None:
    await ding.say("stranger", "查询 OB00000001")
    await ding.settle()
    assert "还没有开通订单助手" in ding.last("stranger")
    assert fake_wecom.messages == []


async def test_a_push_reaches_the_person_on_both_platforms(ding: Ding, fake_wecom: FakeWeCom) -> None:
    await ding.add_user("sup1", "李敏", "supervisor")
    await push(ding, "sup1", "订单 OB00000001 签收异常")
    await ding.settle()
    assert ding.received("sup1") == ["订单 OB00000001 签收异常"]
    assert [m["text"]["content"] for m in fake_wecom.messages if m["touser"] == "sup1"] == ["订单 OB00000001 签收异常"]


async def test_a_dingtalk_failure_does_not_resend_on_wecom(ding: Ding, fake_wecom: FakeWeCom) -> None:
    await ding.add_user("sup1", "李敏", "supervisor")
    ding.fake.fail_next(status=503, path=BATCH_SEND_PATH)
    await push(ding, "sup1", "有新的待审批退款")
    await ding.settle()
    assert len(fake_wecom.messages) == 1 and ding.fake.received == []
    [row] = await outbox(ding, "dingtalk_chat")
    assert (row["status"], row["attempts"]) == ("pending", 1)
    await ding.app[INBOUND_QUEUE].drain()
    await retry_now(ding)
    assert len(fake_wecom.messages) == 1 and ding.received("sup1") == ["有新的待审批退款"]


async def test_a_permanent_refusal_kills_only_that_platforms_row(ding: Ding, fake_wecom: FakeWeCom) -> None:
    await ding.add_user("sup1", "李敏", "supervisor")
    ding.fake.invalid_staff_ids.add(staff_id("sup1"))
    await push(ding, "sup1", "有新的待审批退款")
    await ding.settle()
    assert [r["status"] for r in await outbox(ding, "dingtalk_chat")] == ["dead"]
    assert [r["status"] for r in await outbox(ding, "wecom_chat")] == ["delivered"]


async def test_a_user_without_dingtalk_gets_pushes_on_wecom_only(ding: Ding, fake_wecom: FakeWeCom) -> None:
    async with UnitOfWork(ding.app[DB]) as uow:
        from domain.clock import utcnow
        from domain.users import User

        await uow.users.upsert(User("wh9", "赵六", frozenset({"warehouse"}), "SH01"), utcnow())
        await uow.commit()
    await push(ding, "wh9", "新任务")
    await ding.settle()
    assert ding.fake.received == [] and len(fake_wecom.messages) == 1


async def test_dingtalk_alone_answers_and_pushes(ding_alone: Ding) -> None:
    await ding_alone.add_user("sup1", "李敏", "supervisor")
    await ding_alone.say("sup1", "帮助")
    await push(ding_alone, "sup1", "有新的待审批退款")
    await ding_alone.settle()
    assert len(ding_alone.received("sup1")) == 2
    assert ding_alone.fake.token_requests == 1  # only the push needed a token


async def test_a_card_taps_back_the_command(ding: Ding) -> None:
    from domain.chat import Button, Card

    await ding.add_user("sup1", "李敏", "supervisor")
    card = Card("退款待审批", "AS000012 · ¥350.00", "as12", (Button("approve AS000012", "同意"),
                                                           Button("reject AS000012", "拒绝", 2)), highlight=True)
    async with UnitOfWork(ding.app[DB]) as uow:
        await notify_user(uow, Deps(), "sup1", card)
        await uow.commit()
    await ding.settle()
    [sent] = ding.fake.messages_to(staff_id("sup1"))
    assert sent.kind == "actionCard"
    assert [title for title, _ in sent.content["buttons"]] == ["同意", "拒绝"]
    assert sent.content["buttons"][0][1] == "dtmd://dingtalkclient/sendMessage?content=%E5%90%8C%E6%84%8F%20AS000012"
    assert "<font color=#FF0000>退款待审批</font>" in sent.content["text"]


async def test_stream_mode_messages_reach_the_same_inbox(ding: Ding) -> None:
    dingtalk_stream = pytest.importorskip("dingtalk_stream")
    from bot.dingtalk import accept_payload
    from integrations.dingtalk.stream import TOPIC, stream_client

    await ding.add_user("wh1", "王强", "warehouse", store="SH01")
    _, payload = ding.fake.robot_message(staff_id("wh1"), "帮助", "msgSTREAM", "cid-wh1")

    async def on_message(p: dict[str, Any]) -> None:
        await accept_payload(ding.app[INBOUND_QUEUE], p, ding.settings.dingtalk)

    client = stream_client(ding.fake.app_key, ding.fake.app_secret, on_message)
    acks: list[dict[str, Any]] = []

    class Socket:
        async def send(self, raw: str) -> None:
            acks.append(json.loads(raw))

    client.websocket = Socket()
    frame = {"specVersion": "1.0", "type": dingtalk_stream.CallbackMessage.TYPE,
             "headers": {"topic": TOPIC, "messageId": "frame-1", "contentType": "application/json"},
             "data": json.dumps(payload)}
    await client.route_message(frame)
    await ding.settle()
    assert [(a["code"], a["headers"]["messageId"]) for a in acks] == [(200, "frame-1")]
    assert "发货" in ding.last("wh1")


async def push(d: Ding, userid: str, text: str) -> None:
    async with UnitOfWork(d.app[DB]) as uow:
        await notify_user(uow, Deps(), userid, Reply(text))
        await uow.commit()


async def retry_now(d: Ding) -> None:
    """Make every pending row due and deliver."""
    async with d.app[DB].engine.begin() as conn:
        from sqlalchemy import update

        await conn.execute(update(t.outbox).where(t.outbox.c.status == "pending").values(next_attempt_at=t.outbox.c.created_at))
    await d.settle()
