"""One person's messages are applied in the order they were sent, even when they arrive faster than they are
processed (the inbound queue has several workers): a hand who types the floor steps back to back, or 确认改签 and
then 质检, must not see the second refused as a step out of order or as "刚被其他人修改过"."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.keys import DB
from handlers.address_check import RequestAddressChange
from integrations.db import tables as t
from tests.e2e.conftest import Chat


async def _order_and_refusals(chat: Chat, no: str) -> tuple[tuple[Any, ...], list[Any]]:
    async with chat.app[DB].engine.connect() as conn:
        order = tuple((await conn.execute(
            select(t.orders.c.state, t.orders.c.waybill).where(t.orders.c.order_no == no))).one())
        refused = list((await conn.execute(select(t.audit_log.c.action, t.audit_log.c.reason).where(
            t.audit_log.c.entity_id == no, t.audit_log.c.outcome == "refused"))).all())
    return order, refused


async def test_floor_steps_typed_back_to_back_all_apply_in_order(chat: Chat) -> None:
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    no = await chat.order("DY2001")

    for text in (f"拣货 {no}", f"质检 {no}", f"打包 {no} SF1234567890", f"发货 {no}"):
        await chat.say("wh1", text)  # no waiting for the answer in between
    await chat.settle()

    order, refused = await _order_and_refusals(chat, no)
    assert refused == []
    assert order == ("shipped", "SF1234567890")


async def test_relabel_then_next_step_typed_at_once_both_apply(chat: Chat) -> None:
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    no = await chat.order("DY2002")
    await chat.say("wh1", f"拣货 {no}")
    await chat.settle()
    await chat.handle(RequestAddressChange(no, "上海市徐汇区漕溪北路1号", by="customer", via="api"))

    for text in (f"确认改签 {no} SF1234567891", f"质检 {no}", f"打包 {no} SF1234567891", f"发货 {no}"):
        await chat.say("wh1", text)
    await chat.settle()

    order, refused = await _order_and_refusals(chat, no)
    assert refused == []
    assert order == ("shipped", "SF1234567891")
    assert not any("刚被其他人修改过" in m for m in chat.received("wh1"))
