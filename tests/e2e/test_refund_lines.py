"""The refund approval lines in chat at their exact values, through signed WeCom callbacks on SQLite and
PostgreSQL (README: refunds up to ¥200 approve themselves; "above ¥2,000" a supervisor first, then a manager):
¥200.00 asks nobody, ¥200.01 asks the supervisors; ¥2,000.00 is decided by one supervisor's 同意, ¥2,000.01
also goes to a manager — and a second request on the same order is judged by the order's total."""

from __future__ import annotations

import pytest

from domain import commands as c
from tests.e2e.conftest import Chat


@pytest.fixture
async def staff(chat: Chat) -> Chat:
    for userid, name, role in (("sup1", "李敏", "supervisor"), ("mgr1", "王芳", "manager"),
                               ("fin1", "陈静", "finance"), ("cs1", "刘洋", "service")):
        await chat.add_user(userid, name, role)
    return chat


async def open_case(chat: Chat, amount_fen: int, *, order_no: str | None = None) -> str:
    order_no = order_no or await chat.order(qty=5, amount_fen=100_000)  # ¥5,000 paid
    aftersale = await chat.handle(c.OpenAfterSale(order_no, "refund", "异响", amount_fen, by="cs1", via="wecom"))
    await chat.settle()
    return str(aftersale.aftersale_no)


async def say(chat: Chat, user: str, text: str) -> str:
    await chat.say(user, text)
    await chat.settle()
    return chat.last(user)


async def test_exactly_200_approves_itself_and_200_01_asks_a_supervisor(staff: Chat) -> None:
    await open_case(staff, 20_000)
    assert staff.received("sup1") == []
    assert "已同意退款 ¥200.00" in staff.last("fin1")
    no = await open_case(staff, 20_001, order_no=await staff.order("DY2", qty=5, amount_fen=100_000))
    assert "退款待审批 ¥200.01" in staff.last("sup1") and no in staff.last("sup1")


async def test_exactly_2000_needs_one_supervisor_only(staff: Chat) -> None:
    no = await open_case(staff, 200_000)
    assert "经理复核" not in staff.last("sup1")
    assert await say(staff, "sup1", f"同意 {no}") == f"已同意售后单 {no}，退款 ¥2,000.00，已通知财务开退款凭证。"
    assert staff.received("mgr1") == []
    assert "审批人：李敏" in staff.last("fin1")


async def test_2000_01_needs_a_supervisor_then_a_manager(staff: Chat) -> None:
    no = await open_case(staff, 200_001)
    assert "经理复核" in staff.last("sup1")
    assert await say(staff, "sup1", f"同意 {no}") == "已记录您的同意，还需经理复核，已推送给经理。"
    assert staff.received("fin1") == []
    assert await say(staff, "mgr1", f"同意 {no}") == f"已同意售后单 {no}，退款 ¥2,000.01，已通知财务开退款凭证。"
    assert "审批人：李敏、王芳" in staff.last("fin1")


async def test_a_second_request_crossing_2000_on_the_same_order_needs_a_manager(staff: Chat) -> None:
    order_no = await staff.order(qty=5, amount_fen=100_000)
    first = await open_case(staff, 150_000, order_no=order_no)
    assert await say(staff, "sup1", f"同意 {first}") == f"已同意售后单 {first}，退款 ¥1,500.00，已通知财务开退款凭证。"
    second = await open_case(staff, 50_001, order_no=order_no)  # ¥500.01 alone, ¥2,000.01 on the order
    assert "经理复核" in staff.last("sup1")
    assert await say(staff, "sup1", f"同意 {second}") == "已记录您的同意，还需经理复核，已推送给经理。"
    assert second in staff.last("mgr1")
    assert await say(staff, "mgr1", f"同意 {second}") == (
        f"已同意售后单 {second}，退款 ¥500.01，已通知财务开退款凭证。")
