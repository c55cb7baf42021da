"""Forged or borrowed DingTalk card clicks, on SQLite and PostgreSQL: a click counts only on a card we issued, from
the person it was sent to, with a command on its buttons, once; a captured signature carries no other body; an
over-long card id is a 400. Each refusal stores nothing and changes nothing."""

from __future__ import annotations

import json
from typing import Any

from domain import commands as c
from tests.e2e.dingtalk_harness import (  # noqa: F401 (fixtures)
    Ding,
    cards_fixture,
    ding_alone_fixture,
    ding_fixture,
    fake_dingtalk_fixture,
    staff_id,
)
from tests.e2e.test_dingtalk_cards import (
    approval_card,
    inbox_rows,
    load,
    open_case,
    post_click,
    staff,
)


def click_on(d: Ding, user: str, card_id: str, command: str, action_ids: list[str] | None = None,
             ) -> tuple[dict[str, str], dict[str, Any]]:
    """A correctly signed click with any body an attacker likes."""
    headers, _ = d.fake.card_click(staff_id("sup1"), d.fake.cards_to(staff_id("sup1"))[0].content["out_track_id"],
                                   "同意")
    content = {"cardPrivateData": {"actionIds": action_ids or ["btn1"], "params": {"command": command}}}
    return headers, {"type": "actionCallback", "outTrackId": card_id, "corpId": "dingfakecorp",
                     "userId": staff_id(user), "content": json.dumps(content)}


async def unchanged(d: Ding, no: str, rows: int = 0) -> None:
    await d.settle()
    assert (await load(d, no)).state == "pending_approval"
    assert await inbox_rows(d) == rows


async def test_a_click_on_a_card_never_issued_is_refused(cards: Ding) -> None:
    await staff(cards)
    no = await open_case(cards)
    real = approval_card(cards, "sup1").content["out_track_id"]
    row_id = real.rpartition(".")[2]
    for card_id in (f"approve-{no}.999", f"forged-{no}.{row_id}", f"approve-{no}", "1", f"approve-{no}.{row_id}x"):
        assert await post_click(cards, *click_on(cards, "sup1", card_id, f"approve {no}")) == 403, card_id
    await unchanged(cards, no)


async def test_a_click_by_someone_the_card_was_not_sent_to_is_refused(cards: Ding) -> None:
    await staff(cards)
    await cards.add_user("sup2", "赵刚", "supervisor")
    no = await open_case(cards)
    card_id = approval_card(cards, "sup1").content["out_track_id"]
    for user in ("sup2", "fin1", "nobody"):
        assert await post_click(cards, *click_on(cards, user, card_id, f"approve {no}")) == 403, user
    await unchanged(cards, no)


async def test_a_command_not_on_the_cards_buttons_is_refused(cards: Ding) -> None:
    await staff(cards)
    first = await open_case(cards)
    card_id = approval_card(cards, "sup1").content["out_track_id"]
    order_no = await cards.order("DY2002", qty=3, amount_fen=100_000)
    other = await cards.handle(c.OpenAfterSale(order_no, "refund", "发错货", 150_000, by="cs1", via="dingtalk"))
    await cards.settle()
    for command in (f"approve {other.aftersale_no}", f"reject {other.aftersale_no}", "summary", f"approve {first} x",
                    "release C-4S-01", f"approve {first.lower()}"):
        assert await post_click(cards, *click_on(cards, "sup1", card_id, command)) == 403, command
    await unchanged(cards, first)
    await unchanged(cards, str(other.aftersale_no))


async def test_a_click_is_used_once_whatever_its_envelope(cards: Ding) -> None:
    await staff(cards)
    no = await open_case(cards)
    card_id = approval_card(cards, "sup1").content["out_track_id"]
    assert await post_click(cards, *cards.fake.card_click(staff_id("sup1"), card_id, "同意")) == 200
    await cards.settle()
    told, rows = len(cards.received("sup1")), await inbox_rows(cards)
    for actions in (["btn1", "again"], ["other"], []):
        headers, body = click_on(cards, "sup1", card_id, f"approve {no}", actions)
        assert await post_click(cards, headers, {**body, "corpId": "elsewhere"}) == 200
    await cards.settle()
    assert len(cards.received("sup1")) == told and await inbox_rows(cards) == rows
    assert len((await load(cards, no)).approvals) == 1


async def test_a_captured_click_signature_carries_no_other_body(cards: Ding) -> None:
    await staff(cards)
    no = await open_case(cards)
    card_id = approval_card(cards, "sup1").content["out_track_id"]
    headers, body = cards.fake.card_click(staff_id("sup1"), card_id, "拒绝")
    assert await post_click(cards, headers, body) == 200  # the supervisor's own click on 拒绝
    await cards.settle()
    rows = await inbox_rows(cards)
    approve = {**body, "content": body["content"].replace("reject", "approve").replace("btn2", "btn1")}
    assert await post_click(cards, headers, approve) == 403
    await cards.settle()
    assert (await load(cards, no)).state == "rejected" and await inbox_rows(cards) == rows


async def test_an_over_long_card_id_is_a_400_and_stores_nothing(cards: Ding) -> None:
    await staff(cards)
    no = await open_case(cards)
    for length in (112, 129, 5_000):
        assert await post_click(cards, *click_on(cards, "sup1", "a" * (length - 2) + ".1", f"approve {no}")) == 400
    assert await post_click(cards, *click_on(cards, "sup1", "a" * 109 + ".1", f"approve {no}")) == 403  # 111: ours?
    await unchanged(cards, no)

