"""The floor's replies without I/O: the one next step of each state, the scan card, WeCom-safe task ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.chat_commands import COMMANDS
from domain.order import Order, OrderLine, new_order
from domain.order_lifecycle import ORDER_LIFECYCLE
from handlers.chat_orders import card_task_id, order_card
from handlers.worklists import ago, next_step, start_of_today

T0 = datetime(2024, 11, 11, 2, 42, tzinfo=UTC)  # 10:42 in China


def order(state: str, *, waybill: str | None = None, pending: bool = False) -> Order:
    o = new_order(order_no="OB00000012", channel="douyin", external_id="DY1", customer_id="C1",
                  address="上海市浦东新区张杨路500号", lines=[OrderLine("BP-001", 2, 100)], at=T0, paid=True)
    o.state, o.waybill, o.address_change_pending, o.store = state, waybill, pending, "SH01"
    return o


@pytest.mark.parametrize(("state", "waybill", "pending", "text", "key"), [
    ("split", None, False, "拣货 OB00000012", "pick OB00000012"),
    ("picking", None, False, "质检 OB00000012", "check OB00000012"),
    ("quality_check", None, False, "打包 OB00000012 [运单号]", "pack OB00000012"),
    ("packed", "SF1", False, "发货 OB00000012", "ship OB00000012"),
    ("packed", None, False, "发货 OB00000012 <运单号>", ""),
    ("packed", None, True, "换贴新面单后发送：确认改签 OB00000012 <新运单号>", ""),
    ("shipped", "SF1", False, "等待快递揽收", ""),
    ("completed", "SF1", False, "流程已结束", ""),
])
def test_next_step(state: str, waybill: str | None, pending: bool, text: str, key: str) -> None:
    step = next_step(order(state, waybill=waybill, pending=pending))
    assert (step.text, step.key) == (text, key)


def test_the_chat_done_texts_are_the_tables() -> None:
    for trigger in ("pick", "check", "pack", "ship"):  # a floor command's name is the trigger it fires
        assert COMMANDS[trigger].done == ORDER_LIFECYCLE.done_label(trigger) != trigger


def test_a_scan_card_has_exactly_one_button() -> None:
    card = order_card(order("packed", waybill="SF1"), "t")
    assert card.title == "订单 OB00000012 · 待出库" and [b.key for b in card.buttons] == ["ship OB00000012"]
    typed = order_card(order("packed"), "t")
    assert [b.key for b in typed.buttons] == ["status OB00000012"]
    assert typed.description == "还没有运单号，请输入：发货 OB00000012 <运单号>"


def test_task_ids_keep_only_wecom_characters_and_128_of_them() -> None:
    assert card_task_id("scan", "OB1", "3", "wh1:17/x y") == "scan-OB1-3-wh117xy"
    assert len(card_task_id("scan", "x" * 200)) == 128


def test_ages_and_today_in_china_time() -> None:
    assert [ago(T0, T0 + d) for d in (timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=3),
                                        timedelta(days=3))] == ["刚刚", "5分钟前", "3小时前", "3天前"]
    assert start_of_today(T0) == datetime(2024, 11, 10, 16, 0, tzinfo=UTC)


def test_every_next_step_in_the_lifecycle_names_a_declared_command() -> None:
    steps = [step for spec in ORDER_LIFECYCLE.states.values() for step in spec.next]
    assert steps
    for step in steps:
        assert COMMANDS[step.command].zh == step.verb, step
