"""The order floor in chat, through signed WeCom callbacks and the fake WeCom, on SQLite and PostgreSQL:
查询, 拣货→发货, 改地址/确认改签, scan → card → click, the pick task pushed on allocation, 待办, 异常, 概况,
确认/解决 and 解冻 — each allowed, refused for role, refused for state, and for an unknown order.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select, update

from bot.keys import DB
from domain.clock import hhmm, utcnow
from domain.order import Order
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork
from tests.e2e.conftest import Chat

NEW_ADDRESS = "上海市浦东新区世纪大道100号"


@pytest.fixture
async def staff(chat: Chat) -> Chat:
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    await chat.add_user("wh2", "赵磊", "warehouse", store="BJ01")
    await chat.add_user("sup1", "李敏", "supervisor")
    await chat.add_user("mgr1", "王芳", "manager")
    await chat.add_user("cs1", "刘洋", "service")
    await chat.add_user("buy1", "周采", "purchasing")
    return chat


async def say(chat: Chat, user: str, text: str) -> str:
    await chat.say(user, text)
    await chat.settle()
    return chat.last(user)


async def load(chat: Chat, order_no: str) -> Order:
    async with UnitOfWork(chat.app[DB]) as uow:
        found = await uow.orders.get(order_no)
    assert found is not None
    return found


async def rows(chat: Chat, table: Any, *where: Any) -> list[Any]:
    async with chat.app[DB].engine.connect() as conn:
        return [r._mapping for r in (await conn.execute(select(table).where(*where))).all()]


def cards(chat: Chat, user: str, prefix: str) -> list[dict[str, Any]]:
    return [m["template_card"] for m in chat.fake.messages
            if m.get("touser") == user and m["msgtype"] == "template_card"
            and m["template_card"]["task_id"].startswith(prefix)]


async def packed(chat: Chat, waybill: str | None = "SF1234567890", external_id: str = "DY1001") -> str:
    no = await chat.order(external_id)
    for text in (f"拣货 {no}", f"质检 {no}", f"打包 {no} {waybill or ''}".strip()):
        await say(chat, "wh1", text)
    assert (await load(chat, no)).state == "packed"
    return no


async def test_the_floor_moves_an_order_step_by_step_and_says_what_is_next(staff: Chat) -> None:
    no = await staff.order()
    assert await say(staff, "wh1", f"拣货 {no}") == f"已开始拣货 {no}。下一步：质检 {no}"
    assert await say(staff, "wh1", f"check {no}") == f"已送质检 {no}。下一步：打包 {no} [运单号]"
    assert await say(staff, "wh1", f"打包 {no}") == f"已打包 {no}。下一步：发货 {no} <运单号>"
    assert await say(staff, "wh1", f"发货 {no} SF1234567890") == (
        f"已发货 {no}，运单 SF1234567890，已短信通知客户。下一步：等待快递揽收")
    order = await load(staff, no)
    assert (order.state, order.waybill) == ("shipped", "SF1234567890")
    assert len(await rows(staff, t.outbox, t.outbox.c.channel == "sms")) == 1


async def test_status_shows_label_store_timeline_in_china_time_and_next_step(staff: Chat) -> None:
    no = await staff.order()
    await say(staff, "wh1", f"拣货 {no}")
    text = await say(staff, "buy1", f"查询 {no}")
    assert text.startswith(f"订单 {no} · 拣货中\n门店 SH01 · 运单 无")
    assert "王强 开始拣货（已拆单→拣货中）" in text and "接口 拆单分配（已支付→已拆单）" in text
    assert text.endswith(f"下一步：质检 {no}")
    picked = (await rows(staff, t.audit_log, t.audit_log.c.action == "pick"))[0]["at"]
    assert f"{hhmm(picked)} 王强" in text


async def test_a_service_user_may_not_ship_and_the_refusal_is_audited(staff: Chat) -> None:
    no = await packed(staff)
    assert await say(staff, "cs1", f"发货 {no}") == "“发货”只有主管、仓管可以使用，您的角色是客服。"
    assert (await load(staff, no)).state == "packed"
    refused = await rows(staff, t.audit_log, t.audit_log.c.actor == "cs1")
    assert [r["outcome"] for r in refused] == ["refused"]


async def test_shipping_a_split_order_names_the_state_and_the_allowed_steps(staff: Chat) -> None:
    no = await staff.order()
    text = await say(staff, "wh1", f"发货 {no} SF1")
    assert text.startswith(f"订单 {no} 当前状态为「已拆单」，不能发货。可执行：开始拣货、取消。")
    assert text.endswith(f"下一步：拣货 {no}")
    assert (await load(staff, no)).state == "split"
    refused = await rows(staff, t.audit_log, t.audit_log.c.actor == "wh1", t.audit_log.c.outcome == "refused")
    assert refused[0]["detail"] == {"code": "illegal_transition"}
    summary = await say(staff, "mgr1", "概况")
    assert "今日状态跳变异常 1 次" in summary and "已拆单 1" in summary and "新订单 1 单" in summary


async def test_shipping_without_a_waybill_gives_the_guards_reason(staff: Chat) -> None:
    no = await packed(staff, waybill=None)
    assert await say(staff, "wh1", f"发货 {no}") == f"订单 {no} 还没有运单号，不能发货。请发送：发货 {no} <运单号>"
    assert (await load(staff, no)).state == "packed"


async def test_unknown_order_and_missing_argument(staff: Chat) -> None:
    assert (await say(staff, "wh1", "查询 OB99999999")).startswith("找不到订单 OB99999999")
    assert await say(staff, "wh1", "发货") == "缺少单号。用法：发货 <单号> [运单号]"
    assert await say(staff, "cs1", f"改地址 {await staff.order()}") == "缺少新地址。用法：改地址 <单号> <新地址>"
    assert await say(staff, "sup1", "解决") == "缺少异常编号。用法：解决 <异常编号> [说明]"


async def test_warehouse_staff_of_another_store_are_refused(staff: Chat) -> None:
    no = await staff.order()
    assert await say(staff, "wh2", f"拣货 {no}") == f"订单 {no} 属于门店 SH01，您只能操作本门店（BJ01）的订单。"
    assert (await load(staff, no)).state == "split"
    assert await say(staff, "sup1", f"拣货 {no}") == f"已开始拣货 {no}。下一步：质检 {no}"


async def test_an_address_change_in_the_warehouse_blocks_shipping_until_relabelled(staff: Chat) -> None:
    no = await packed(staff)
    assert await say(staff, "wh1", f"改地址 {no} {NEW_ADDRESS}") == (
        "“改地址”只有运营经理、客服、主管可以使用，您的角色是仓管。")
    text = await say(staff, "cs1", f"改地址 {no} {NEW_ADDRESS}")
    assert text == f"已改地址 {no}：{NEW_ADDRESS}。包裹已在门店 SH01 仓库，已通知仓管换贴新面单，换好后才能发货。"
    assert "需先换贴新面单" in await say(staff, "wh1", f"发货 {no} SF1")
    tasks = await say(staff, "cs1", "待办")
    assert f"{no} 改址待门店 SH01 换贴面单" in tasks
    assert await say(staff, "wh1", f"确认改签 {no} YT0001") == f"已确认改签 {no}，新运单 YT0001。下一步：发货 {no}"
    await say(staff, "wh1", f"发货 {no}")
    order = await load(staff, no)
    assert (order.state, order.waybill, order.address) == ("shipped", "YT0001", NEW_ADDRESS)
    refused = await say(staff, "cs1", f"改地址 {no} 上海市黄浦区南京东路1号")
    assert refused.startswith("订单已发货，不能改地址（") and "发货，运单 YT0001）" in refused
    assert (await load(staff, no)).address == NEW_ADDRESS


async def test_scan_gives_a_card_with_one_button_and_a_click_ships(staff: Chat) -> None:
    no = await packed(staff)
    await staff.scan("wh1", "SF1234567890")
    await staff.settle()
    [card] = cards(staff, "wh1", "scan-")
    assert card["main_title"]["title"] == f"订单 {no} · 待出库"
    assert [(b["key"], b["text"]) for b in card["button_list"]] == [(f"ship {no}", "发货")]
    assert {x["keyname"]: x["value"] for x in card["horizontal_content_list"]}["运单"] == "SF1234567890"
    code = staff.fake.issue_response_code()
    await staff.click("wh1", f"ship {no}", card["task_id"], code)
    await staff.settle()
    assert (await load(staff, no)).state == "shipped"
    sms = await rows(staff, t.outbox, t.outbox.c.channel == "sms")
    assert [(r["recipient"], r["kind"]) for r in sms] == [("13800000000", "order_shipped")]
    assert staff.fake.card_updates[0]["button"]["replace_name"].startswith("已发货 · 王强 ")
    await staff.scan("wh2", no)
    await staff.settle()
    assert "属于门店 SH01" in staff.last("wh2")


async def test_scanning_a_packed_order_without_waybill_says_to_type_it(staff: Chat) -> None:
    no = await packed(staff, waybill=None)
    await staff.scan("wh1", no)
    await staff.scan("wh1", no)
    await staff.settle()
    first, second = cards(staff, "wh1", "scan-")
    assert [b["key"] for b in first["button_list"]] == [f"status {no}"]
    assert f"发货 {no} <运单号>" in first["sub_title_text"]
    assert first["task_id"] != second["task_id"]
    await staff.scan("wh1", "SF0000000000")
    await staff.settle()
    assert staff.last("wh1").startswith("找不到订单 SF0000000000")


async def test_allocation_pushes_a_pick_task_to_that_stores_warehouse_only(staff: Chat) -> None:
    no = await staff.order()
    await staff.settle()
    [card] = cards(staff, "wh1", "task-")
    assert card["main_title"]["title"] == f"新拣货任务 · {no}"
    assert [(b["key"], b["text"]) for b in card["button_list"]] == [(f"pick {no}", "开始拣货")]
    assert staff.received("wh2") == [] and staff.received("sup1") == []
    await staff.click("wh1", f"pick {no}", card["task_id"], staff.fake.issue_response_code())
    await staff.settle()
    assert (await load(staff, no)).state == "picking"


async def test_tasks_pin_an_address_change_on_top(staff: Chat) -> None:
    older = await staff.order("DY1001")
    newer = await staff.order("DY1002")
    await say(staff, "wh1", f"拣货 {newer}")
    await say(staff, "cs1", f"改地址 {newer} {NEW_ADDRESS}")
    stuck = await staff.order("DY1003")
    async with staff.app[DB].engine.begin() as conn:
        await conn.execute(insert(t.exceptions).values(
            kind="stuck_order", order_no=stuck, store="SH01", severity="warning", message="卡单", opened_at=utcnow(),
            resolution=""))
    lines = (await say(staff, "wh1", "待办")).splitlines()
    assert lines[0] == "【门店 SH01 待处理订单】"
    assert lines[1].startswith(f"🔴 {newer} 拣货中（改址待换面单）") and lines[1].endswith(f"→ 质检 {newer}")
    assert lines[2].startswith(f"🔴 {stuck} 已拆单（异常 #1）") and lines[2].endswith(f"→ 拣货 {stuck}")
    assert lines[3].startswith(f"{older} 已拆单") and lines[3].endswith(f"→ 拣货 {older}")
    assert await say(staff, "wh2", "待办") == "暂无待办，有新任务会推送给您。"
    assert await say(staff, "buy1", "待办") == "暂无待办，有新任务会推送给您。"


async def test_exceptions_are_listed_acknowledged_and_resolved(staff: Chat) -> None:
    no = await staff.order(qty=5, on_hand=1)  # no store can fill it: an out-of-stock exception
    [exc] = await rows(staff, t.exceptions)
    listed = await say(staff, "sup1", "异常")
    assert f"#{exc['id']} 缺货 {no}" in listed
    assert await say(staff, "wh1", "异常") == "“异常”只有运营经理、主管可以使用，您的角色是仓管。"
    assert f"#{exc['id']} 缺货 {no}" in await say(staff, "buy1", "待办")
    assert await say(staff, "wh2", f"确认 {exc['id']}") == (
        f"异常 #{exc['id']} 属于门店 SH01，仓管只能处理本门店（BJ01）的异常。")
    assert await say(staff, "wh1", f"确认 {exc['id']}") == (
        f"已认领异常 #{exc['id']}（缺货 {no}）。处理完后发送：解决 {exc['id']} [说明]")
    assert "已由 王强 于" in await say(staff, "sup1", f"确认 {exc['id']}")
    assert (await say(staff, "sup1", f"解决 {exc['id']} 已补货")).startswith(f"已解决异常 #{exc['id']}（缺货 {no}）")
    [done] = await rows(staff, t.exceptions)
    assert (done["acknowledged_by"], done["resolved_by"], done["resolution"]) == ("wh1", "sup1", "已补货")
    audit = await rows(staff, t.audit_log, t.audit_log.c.entity == "exception")
    assert [(r["actor"], r["action"], r["to_state"]) for r in audit if r["outcome"] == "ok"] == [
        ("wh1", "ack", "acknowledged"), ("sup1", "resolve", "resolved")]
    # the refused tries are on the same record's trail: the other store's clerk, the second claim
    assert [(r["actor"], r["action"]) for r in audit if r["outcome"] == "refused"] == [("wh2", "ack"), ("sup1", "ack")]
    assert await say(staff, "sup1", "异常") == "暂无未处理的异常。"
    assert (await say(staff, "sup1", "解决 999")).startswith("找不到异常 #999")


async def test_release_clears_a_settlement_hold_and_audits_it(staff: Chat) -> None:
    await staff.order()
    async with staff.app[DB].engine.begin() as conn:
        await conn.execute(update(t.customers).values(settlement_hold=True, hold_reason="物流冲突：订单待核实"))
    assert await say(staff, "cs1", "解冻 C-4S-01") == "“解冻”只有运营经理、主管可以使用，您的角色是客服。"
    assert (await say(staff, "sup1", "解冻 C-4S-01")).startswith("已解冻客户 浦东4S店（C-4S-01）的结算")
    [customer] = await rows(staff, t.customers)
    assert customer["settlement_hold"] is False or customer["settlement_hold"] == 0
    refused, audit = await rows(staff, t.audit_log, t.audit_log.c.entity == "customer")
    assert (refused["actor"], refused["outcome"], refused["entity_id"]) == ("cs1", "refused", "C-4S-01")
    assert (audit["actor"], audit["action"], audit["from_state"], audit["to_state"]) == (
        "sup1", "release", "held", "released")
    assert "没有冻结" in await say(staff, "sup1", "解冻 C-4S-01")
    assert await say(staff, "mgr1", "解冻 C-NOPE") == "找不到客户 C-NOPE，请核对客户编号（订单查询里可看到）。"


async def test_supervisor_tasks_list_open_exceptions(staff: Chat) -> None:
    no = await staff.order(qty=5, on_hand=1)
    text = await say(staff, "mgr1", "待办")
    assert text.startswith("【未处理异常】") and f"缺货 {no}" in text
