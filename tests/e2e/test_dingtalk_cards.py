"""DingTalk interactive cards through the whole app, on SQLite and PostgreSQL: an approval card goes out through
createAndDeliver when cards are configured, a signed click decides the case once, forged or malformed callbacks
are refused with nothing stored, and without the configuration cards stay actionCards."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from bot.dingtalk_cards import CALLBACK_PATH
from bot.keys import DB, DINGTALK_CLIENT
from domain import commands as c
from domain.aftersale import AfterSale
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork
from tests.e2e.dingtalk_harness import (  # noqa: F401 (fixtures)
    ROUTE_KEY,
    TEMPLATE_ID,
    Ding,
    cards_fixture,
    ding_alone_fixture,
    ding_fixture,
    fake_dingtalk_fixture,
    staff_id,
)


async def staff(d: Ding) -> None:
    await d.add_user("sup1", "李敏", "supervisor")
    await d.add_user("fin1", "陈静", "finance")
    await d.add_user("cs1", "刘洋", "service")


async def open_case(d: Ding, amount_fen: int = 150_000) -> str:
    order_no = await d.order("DY1001", qty=3, amount_fen=100_000)
    aftersale = await d.handle(c.OpenAfterSale(order_no, "refund", "刹车片装不上，尺寸不对", amount_fen, by="cs1",
                                               via="dingtalk"))
    await d.settle()
    return str(aftersale.aftersale_no)


async def load(d: Ding, aftersale_no: str) -> AfterSale:
    async with UnitOfWork(d.app[DB]) as uow:
        found = await uow.aftersales.get(aftersale_no)
    assert found is not None
    return found


async def inbox_rows(d: Ding) -> int:
    async with d.app[DB].engine.connect() as conn:
        return len((await conn.execute(select(t.inbound_messages))).all())


async def post_click(d: Ding, headers: dict[str, str], body: Any) -> int:
    response = await d.client.post(CALLBACK_PATH, headers=headers, json=body)
    return response.status


def approval_card(d: Ding, user: str) -> Any:
    [card] = d.fake.cards_to(staff_id(user))
    return card


async def test_an_approval_card_goes_out_as_an_interactive_card(cards: Ding) -> None:
    await staff(cards)
    no = await open_case(cards)
    card = approval_card(cards, "sup1")
    assert card.kind == "interactiveCard"
    assert [title for title, _ in card.content["buttons"]] == ["同意", "拒绝"]
    assert card.content["buttons"][0][1] == f"approve {no}"
    assert "退款待审批 ¥1,500.00" in card.content["title"]
    body = cards.fake.cards[card.content["out_track_id"]]
    assert body["cardTemplateId"] == TEMPLATE_ID
    assert (body["callbackType"], body["callbackRouteKey"]) == ("HTTP", ROUTE_KEY)
    assert body["openSpaceId"] == f"dtv1.card//IM_ROBOT.{staff_id('sup1')}"
    assert body["imRobotOpenDeliverModel"] == {"spaceType": "IM_ROBOT", "robotCode": cards.fake.app_key}
    assert body["outTrackId"].startswith(f"approve-{no}.")
    assert not [m for m in cards.fake.messages_to(staff_id("sup1")) if m.kind == "actionCard"]


async def test_a_signed_click_approves_once_and_the_supervisor_is_told(cards: Ding) -> None:
    await staff(cards)
    no = await open_case(cards)
    out_track_id = approval_card(cards, "sup1").content["out_track_id"]
    headers, body = cards.fake.card_click(staff_id("sup1"), out_track_id, "同意")
    response = await cards.client.post(CALLBACK_PATH, headers=headers, json=body)
    assert response.status == 200 and await response.json() == {}
    await cards.settle()
    approved = await load(cards, no)
    assert approved.state == "approved" and len(approved.approvals) == 1
    assert cards.last("sup1") == f"已同意售后单 {no}，退款 ¥1,500.00，已通知财务开退款凭证。"
    assert len(cards.received("fin1")) == 1
    told, rows = len(cards.received("sup1")), await inbox_rows(cards)

    headers, body = cards.fake.card_click(staff_id("sup1"), out_track_id, "同意")  # the same click again
    assert await post_click(cards, headers, body) == 200
    await cards.settle()
    after = await load(cards, no)
    assert (after.state, after.version, len(after.approvals)) == ("approved", approved.version, 1)
    assert len(cards.received("sup1")) == told and await inbox_rows(cards) == rows
    assert len(cards.received("fin1")) == 1


async def test_a_reject_click_after_the_approval_says_who_decided(cards: Ding) -> None:
    await staff(cards)
    no = await open_case(cards)
    out_track_id = approval_card(cards, "sup1").content["out_track_id"]
    for button in ("同意", "拒绝"):
        assert await post_click(cards, *cards.fake.card_click(staff_id("sup1"), out_track_id, button)) == 200
        await cards.settle()
    assert (await load(cards, no)).state == "approved"
    assert "已由 李敏 于" in cards.last("sup1") and "无需重复处理" in cards.last("sup1")


async def test_forged_and_malformed_clicks_are_refused_and_nothing_is_stored(cards: Ding) -> None:
    await staff(cards)
    no = await open_case(cards)
    out_track_id = approval_card(cards, "sup1").content["out_track_id"]
    forged = cards.fake.card_click(staff_id("sup1"), out_track_id, "同意", api_secret="guessed-secret")
    assert await post_click(cards, *forged) == 403
    now_ms = int(time.time() * 1000)
    stale = cards.fake.card_click(staff_id("sup1"), out_track_id, "同意", timestamp_ms=now_ms - 3_600_000 - 5_000)
    assert await post_click(cards, *stale) == 403
    headers, body = cards.fake.card_click(staff_id("sup1"), out_track_id, "同意")
    assert await post_click(cards, {}, body) == 400
    assert await post_click(cards, {**headers, "x-ddpaas-signature-timestamp": "soon"}, body) == 400
    for broken in ({**body, "content": "not json"}, {**body, "userId": ""}, {**body, "type": "dynamicData"},
                   {**body, "content": '{"cardPrivateData": {"actionIds": ["btn1"], "params": {}}}'}):
        assert await post_click(cards, headers, broken) == 400, broken
    for raw in (b"not json", b"[1, 2]"):
        response = await cards.client.post(CALLBACK_PATH, headers=headers, data=raw)
        assert response.status == 400
    await cards.settle()
    assert await inbox_rows(cards) == 0
    assert (await load(cards, no)).state == "pending_approval"


async def test_the_older_documented_shape_with_value_is_read_too(cards: Ding) -> None:
    await staff(cards)
    no = await open_case(cards)
    out_track_id = approval_card(cards, "sup1").content["out_track_id"]
    headers, body = cards.fake.card_click(staff_id("sup1"), out_track_id, "同意")
    body = {"corpId": body["corpId"], "outTrackId": out_track_id, "userId": body["userId"],
            "value": f'{{"cardPrivateData": {{"actionIds": ["btn1"]}}, "params": {{"command": "approve {no}"}}}}'}
    assert await post_click(cards, headers, body) == 200
    await cards.settle()
    assert (await load(cards, no)).state == "approved"


async def test_a_repeated_create_after_a_lost_answer_counts_as_delivered(cards: Ding) -> None:
    await staff(cards)
    await open_case(cards)
    [card] = cards.fake.cards_to(staff_id("sup1"))
    body = cards.fake.cards[card.content["out_track_id"]]
    answer = await cards.app[DINGTALK_CLIENT].create_and_deliver(body)  # the outbox retrying a sent card
    assert answer["repeated"] is True
    assert len(cards.fake.cards_to(staff_id("sup1"))) == 1


async def test_without_the_configuration_cards_stay_action_cards(ding: Ding) -> None:
    await staff(ding)
    no = await open_case(ding)
    [sent] = [m for m in ding.fake.messages_to(staff_id("sup1")) if m.kind == "actionCard"]
    assert [title for title, _ in sent.content["buttons"]] == ["同意", "拒绝"]
    assert ding.fake.cards == {}
    headers = {"x-ddpaas-signature-timestamp": str(int(time.time() * 1000))}
    headers["x-ddpaas-signature"] = ding.fake.card_signature(int(headers["x-ddpaas-signature-timestamp"]))
    body = {"type": "actionCallback", "outTrackId": f"approve-{no}.1", "userId": staff_id("sup1"),
            "content": f'{{"cardPrivateData": {{"actionIds": ["btn1"], "params": {{"command": "approve {no}"}}}}}}'}
    assert await post_click(ding, headers, body) == 403
    assert await inbox_rows(ding) == 0
