"""Two taps or two scans by one person in one second are two actions; WeCom's re-send of one is still one.

WeCom's CreateTime has whole seconds and events carry no MsgId, so the inbox key must come from what tells
two events apart: a click's ResponseCode, a scan's content. Signed callbacks through the whole app.
"""

from __future__ import annotations

import time

import pytest

from integrations.db import tables as t
from integrations.fakes.wecom_signer import card_click_xml, scan_xml
from tests.e2e.conftest import CORP_ID, Chat
from tests.e2e.test_chat_warehouse import cards, load, packed, rows


@pytest.fixture
async def staff(chat: Chat) -> Chat:
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    return chat


async def test_two_taps_in_one_second_both_act_and_a_resent_tap_does_not(staff: Chat) -> None:
    first, second = await staff.order("DY2001"), await staff.order("DY2002")
    await staff.settle()
    task = {card["button_list"][0]["key"]: card["task_id"] for card in cards(staff, "wh1", "task-")}
    now = int(time.time())
    taps = [card_click_xml("wh1", f"pick {no}", task[f"pick {no}"], staff.fake.issue_response_code(), now,
                           corp_id=CORP_ID) for no in (first, second)]
    for xml in taps:
        assert await staff.post_xml(xml) == 200
    assert await staff.post_xml(taps[1]) == 200  # WeCom re-sends a callback it got no answer for in time
    await staff.settle()
    assert [(await load(staff, no)).state for no in (first, second)] == ["picking", "picking"]
    assert len(await rows(staff, t.inbound_messages)) == 2
    assert len(staff.fake.card_updates) == 2
    assert sum(text.startswith("已开始拣货") for text in staff.received("wh1")) == 2


async def test_two_scans_in_one_second_both_act_and_a_resent_scan_does_not(staff: Chat) -> None:
    first = await packed(staff, "SF1000000001", "DY3001")
    second = await packed(staff, "SF1000000002", "DY3002")
    now = int(time.time())
    scans = [scan_xml("wh1", f"CODE_128,{waybill}", now, corp_id=CORP_ID)
             for waybill in ("SF1000000001", "SF1000000002")]
    inbox_before = len(await rows(staff, t.inbound_messages))
    for xml in scans:
        assert await staff.post_xml(xml) == 200
    assert await staff.post_xml(scans[0]) == 200  # the re-send
    await staff.settle()
    titles = [card["main_title"]["title"] for card in cards(staff, "wh1", "scan-")]
    assert titles == [f"订单 {first} · 待出库", f"订单 {second} · 待出库"]
    assert len(await rows(staff, t.inbound_messages)) == inbox_before + 2
