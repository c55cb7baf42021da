"""After-sale decisions in chat, through signed WeCom callbacks and the fake WeCom, on SQLite and PostgreSQL:
the 同意/拒绝 card, its update after a click, repeated and simultaneous clicks, and what an approval sets going.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from bot.keys import DB
from domain import commands as c
from domain.aftersale import AfterSale
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork
from tests.e2e.conftest import Chat

REASON = "刹车片装不上，尺寸不对"


@pytest.fixture
async def staff(chat: Chat) -> Chat:
    await chat.add_user("sup1", "李敏", "supervisor")
    await chat.add_user("sup2", "张伟", "supervisor")
    await chat.add_user("mgr1", "王芳", "manager")
    await chat.add_user("fin1", "陈静", "finance")
    await chat.add_user("cs1", "刘洋", "service")
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    await chat.add_user("buy1", "周采", "purchasing")
    return chat


async def open_case(chat: Chat, *, amount_fen: int = 150_000, kind: str = "refund", on_hand: int = 10,
                    qty: int = 3, unit_fen: int = 100_000, external_id: str = "DY1001") -> str:
    order_no = await chat.order(external_id, qty=qty, amount_fen=unit_fen, on_hand=on_hand)
    aftersale = await chat.handle(c.OpenAfterSale(order_no, kind, REASON, amount_fen, by="cs1", via="wecom"))
    await chat.settle()
    return str(aftersale.aftersale_no)


async def load(chat: Chat, aftersale_no: str) -> AfterSale:
    async with UnitOfWork(chat.app[DB]) as uow:
        found = await uow.aftersales.get(aftersale_no)
    assert found is not None
    return found


def card_for(chat: Chat, user: str, task_prefix: str = "approve-") -> dict[str, Any]:
    cards = [m["template_card"] for m in chat.fake.messages
             if m.get("touser") == user and m["msgtype"] == "template_card"
             and m["template_card"]["task_id"].startswith(task_prefix)]
    assert cards, f"{user} got no card; fake got {chat.fake.messages}"
    return cards[-1]


async def click(chat: Chat, user: str, verb: str, aftersale_no: str, task_prefix: str = "approve-") -> str:
    """Click a button on the user's approval card; returns the response_code WeCom gave the click."""
    code = chat.fake.issue_response_code()
    await chat.click(user, f"{verb} {aftersale_no}", card_for(chat, user, task_prefix)["task_id"], code)
    return code


def replaced(chat: Chat) -> list[str]:
    return [u["button"]["replace_name"] for u in chat.fake.card_updates]


async def test_an_approval_card_reaches_every_supervisor_with_the_reason_category(staff: Chat) -> None:
    no = await open_case(staff)
    for sup in ("sup1", "sup2"):
        text = staff.last(sup)
        assert "退款待审批 ¥1,500.00" in text and no in text and "[同意]" in text and "[拒绝]" in text
        assert "型号不符" in text
    assert (await load(staff, no)).category == "型号不符"
    assert staff.received("mgr1") == []


async def test_a_click_approves_updates_that_card_once_and_tells_finance(staff: Chat) -> None:
    no = await open_case(staff)
    code = await click(staff, "sup1", "approve", no)
    await staff.settle()
    assert (await load(staff, no)).state == "approved"
    assert staff.last("sup1") == f"已同意售后单 {no}，退款 ¥1,500.00，已通知财务开退款凭证。"
    assert len(staff.fake.card_updates) == 1
    update = staff.fake.card_updates[0]
    assert update["response_code"] == code and update["userids"] == ["sup1"]
    assert "已同意 · 李敏" in update["button"]["replace_name"]
    assert len(staff.received("fin1")) == 1 and "审批人：李敏" in staff.last("fin1")


async def test_a_second_click_changes_nothing_and_says_who_decided(staff: Chat) -> None:
    no = await open_case(staff)
    await click(staff, "sup1", "approve", no)
    await staff.settle()
    before = await load(staff, no)
    await click(staff, "sup1", "approve", no)
    await click(staff, "sup2", "reject", no)
    await staff.settle()
    after = await load(staff, no)
    assert (after.state, after.version, len(after.approvals)) == ("approved", before.version, 1)
    hhmm = replaced(staff)[0].rsplit(" ", 1)[1]
    assert staff.last("sup1") == f"售后单 {no} 已由 李敏 于 {hhmm} 同意，无需重复处理。"
    assert staff.last("sup2") == f"售后单 {no} 已由 李敏 于 {hhmm} 同意，无需重复处理。"
    assert len(staff.fake.card_updates) == 1 and len(staff.received("fin1")) == 1


async def test_a_large_refund_needs_a_supervisor_then_a_manager(staff: Chat) -> None:
    no = await open_case(staff, amount_fen=250_000)
    assert "经理复核" in staff.last("sup1")
    await click(staff, "sup1", "approve", no)
    await staff.settle()
    assert staff.last("sup1") == "已记录您的同意，还需经理复核，已推送给经理。"
    assert (await load(staff, no)).state == "pending_approval"
    assert staff.received("fin1") == []
    assert "主管 李敏 已同意" in staff.last("mgr1")
    await click(staff, "mgr1", "approve", no, task_prefix=f"approve-{no}-manager")
    await staff.settle()
    assert (await load(staff, no)).state == "approved"
    assert staff.last("mgr1") == f"已同意售后单 {no}，退款 ¥2,500.00，已通知财务开退款凭证。"
    assert [r.split(" ")[0] for r in replaced(staff)] == ["已同意", "已同意"]
    assert "已同意 · 王芳" in replaced(staff)[1]
    assert len(staff.received("fin1")) == 1 and "审批人：李敏、王芳" in staff.last("fin1")


async def test_the_same_person_with_both_roles_cannot_approve_twice(staff: Chat) -> None:
    await staff.add_user("boss", "赵总", "supervisor", "manager")
    no = await open_case(staff, amount_fen=250_000)
    await click(staff, "boss", "approve", no)
    await staff.settle()
    await click(staff, "boss", "approve", no, task_prefix=f"approve-{no}-manager")
    await staff.settle()
    aftersale = await load(staff, no)
    assert aftersale.state == "pending_approval" and [a.by for a in aftersale.approvals] == ["boss"]
    assert "您已审批过" in staff.last("boss")
    assert len(staff.fake.card_updates) == 1 and staff.received("fin1") == []


async def test_a_warehouse_user_may_not_approve(staff: Chat) -> None:
    no = await open_case(staff)
    await staff.say("wh1", f"同意 {no}")
    await staff.settle()
    assert staff.last("wh1") == "“同意”只有运营经理、主管可以使用，您的角色是仓管。"
    assert (await load(staff, no)).state == "pending_approval"


async def test_an_unknown_number_and_a_missing_number_are_answered(staff: Chat) -> None:
    await staff.say("sup1", "同意 AS999999")
    await staff.settle()
    assert "找不到售后单 AS999999" in staff.last("sup1")
    await staff.say("sup1", "同意")
    await staff.settle()
    assert staff.last("sup1") == "缺少售后单号。用法：同意 <售后单号>"
    await staff.say("sup1", "reject")
    await staff.settle()
    assert staff.last("sup1") == "缺少售后单号。用法：拒绝 <售后单号> [原因]"


async def test_a_typed_rejection_with_a_reason_tells_the_requester(staff: Chat) -> None:
    no = await open_case(staff)
    await staff.say("sup1", f"拒绝 {no} 客户已自行修好，无需退款")
    await staff.settle()
    aftersale = await load(staff, no)
    assert (aftersale.state, aftersale.decision_note) == ("rejected", "客户已自行修好，无需退款")
    assert staff.last("sup1") == f"已拒绝售后单 {no}（原因：客户已自行修好，无需退款），已通知申请人。"
    assert staff.last("cs1") == f"售后单 {no} 被 李敏 拒绝，原因：客户已自行修好，无需退款。"
    assert staff.fake.card_updates == [] and staff.received("fin1") == []


async def test_a_rejection_click_updates_the_card(staff: Chat) -> None:
    no = await open_case(staff)
    await click(staff, "sup2", "reject", no)
    await staff.settle()
    assert (await load(staff, no)).state == "rejected"
    assert replaced(staff)[0].startswith("已拒绝 · 张伟 ")
    await click(staff, "sup1", "approve", no)
    await staff.settle()
    assert "已由 张伟 于" in staff.last("sup1") and "拒绝，无需重复处理" in staff.last("sup1")
    assert len(staff.fake.card_updates) == 1


async def test_two_supervisors_clicking_at_once_approve_it_once(staff: Chat) -> None:
    """On PostgreSQL the loser either reads the decided case or loses the row-version race (Conflict, then
    reloaded); SQLite serialises the two writers. Either way: one approval, and a clear sentence."""
    no = await open_case(staff)
    await asyncio.gather(click(staff, "sup1", "approve", no), click(staff, "sup2", "approve", no))
    await staff.settle()
    aftersale = await load(staff, no)
    assert aftersale.state == "approved" and len(aftersale.approvals) == 1
    winner = aftersale.approvals[0].by
    loser = "sup2" if winner == "sup1" else "sup1"
    assert staff.last(winner) == f"已同意售后单 {no}，退款 ¥1,500.00，已通知财务开退款凭证。"
    assert "无需重复处理" in staff.last(loser) or "刚被其他人处理过" in staff.last(loser)
    assert len(staff.received("fin1")) == 1 and len(staff.fake.card_updates) == 1
    async with staff.app[DB].engine.connect() as conn:
        approvals = (await conn.execute(select(t.audit_log).where(
            t.audit_log.c.entity_id == no, t.audit_log.c.action == "approve", t.audit_log.c.outcome == "ok"))).all()
    assert len(approvals) == 1


async def test_an_exchange_in_stock_creates_the_replacement_order(staff: Chat) -> None:
    no = await open_case(staff, kind="exchange", qty=2, on_hand=10)
    await click(staff, "sup1", "approve", no)
    await staff.settle()
    assert staff.last("sup1") == f"已同意售后单 {no}（换货），门店 SH01 有货，已创建换货订单并推送仓库。"
    async with UnitOfWork(staff.app[DB]) as uow:
        replacement = await uow.orders.by_external_id("aftersale", no)
    assert replacement is not None
    assert (replacement.state, replacement.store, replacement.items) == ("split", "SH01", (("BP-001", 2),))
    assert f"换货订单 {replacement.order_no}" in staff.last("cs1")
    assert staff.received("fin1") == [] and staff.received("buy1") == []


async def test_an_exchange_out_of_stock_asks_purchasing(staff: Chat) -> None:
    no = await open_case(staff, kind="exchange", qty=2, on_hand=2)
    await click(staff, "sup1", "approve", no)
    await staff.settle()
    assert staff.last("sup1") == f"已同意售后单 {no}（换货），BP-001 门店 SH01 缺货，已向采购发起补货申请。"
    assert staff.last("buy1").startswith(f"补货申请：BP-001 × 2，用于换货 {no}")
    async with staff.app[DB].engine.connect() as conn:
        kinds = [r.kind for r in (await conn.execute(select(t.exceptions))).all()]
        replacements = (await conn.execute(select(t.orders).where(t.orders.c.channel == "aftersale"))).all()
    assert kinds == ["purchase_request"] and replacements == []
    assert "暂时缺货" in staff.last("cs1") and staff.received("fin1") == []
