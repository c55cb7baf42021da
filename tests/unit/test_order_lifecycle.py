"""Every legal and every illegal order transition, from a table written out by hand from DESIGN.md, and
what the table says about each state: on-enter actions, the automatic trigger, next step and done text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain import events
from domain.errors import GuardRefused, IllegalTransition, InvalidInput
from domain.lifecycle import Lifecycle, NextStep, StateSpec, TransitionSpec
from domain.order import Order, OrderLine, new_order
from domain.order_lifecycle import ORDER_LIFECYCLE

NOW = datetime(2026, 11, 24, 2, 42, tzinfo=UTC)  # 10:42 in China

STATES = [
    "pending_payment", "paid", "split", "picking", "quality_check", "packed",
    "shipped", "in_transit", "delivered", "delivery_exception", "completed", "cancelled",
]
LEGAL = {
    ("pay", "pending_payment"): "paid",
    ("allocate", "paid"): "split",
    ("pick", "split"): "picking",
    ("check", "picking"): "quality_check",
    ("pack", "quality_check"): "packed",
    ("ship", "packed"): "shipped",
    ("pick_up", "shipped"): "in_transit",
    ("deliver", "shipped"): "delivered",
    ("deliver", "in_transit"): "delivered",
    ("report_exception", "shipped"): "delivery_exception",
    ("report_exception", "in_transit"): "delivery_exception",
    ("report_exception", "delivered"): "delivery_exception",
    ("resolve_exception", "delivery_exception"): "delivered",
    ("complete", "delivered"): "completed",
    **{("cancel", s): "cancelled" for s in STATES[:6]},
}
TRIGGERS = sorted({trigger for trigger, _ in LEGAL})


def order_in(state: str, **overrides: object) -> Order:
    order = Order(
        order_no="OB00000001", channel="douyin", external_id="DY1", customer_id="C1",
        customer_phone="13800000000", address="上海市浦东新区张杨路500号", store="SH01",
        lines=[OrderLine("BP-001", 2, 19_900, "刹车片")], created_at=NOW, state=state, waybill="SF1234567890",
    )
    for key, value in overrides.items():
        setattr(order, key, value)
    return order


def test_the_table_has_the_twelve_contract_states() -> None:
    assert list(ORDER_LIFECYCLE.states) == STATES
    assert ORDER_LIFECYCLE.label("split") == "已拆单"
    assert ORDER_LIFECYCLE.label("delivery_exception") == "签收异常"


@pytest.mark.parametrize(("trigger", "source"), sorted(LEGAL))
def test_legal_transition_reaches_its_destination(trigger: str, source: str) -> None:
    order = order_in(source)
    assert order.fire(trigger, NOW, store="SH01") == (source, LEGAL[trigger, source])
    assert order.state == LEGAL[trigger, source]
    assert events.OrderStateChanged(order.order_no, trigger, source, order.state) in order.events


ILLEGAL = [(t, s) for t in TRIGGERS for s in STATES if (t, s) not in LEGAL]


@pytest.mark.parametrize(("trigger", "source"), ILLEGAL)
def test_illegal_transition_is_refused_with_a_reason_and_changes_nothing(trigger: str, source: str) -> None:
    order = order_in(source)
    with pytest.raises(IllegalTransition) as refused:
        order.fire(trigger, NOW)
    assert order.state == source
    assert order.events == []
    assert f"当前状态为「{ORDER_LIFECYCLE.label(source)}」" in refused.value.reason


def test_unknown_trigger_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="没有“teleport”这个操作"):
        order_in("packed").fire("teleport", NOW)


def test_no_shipping_without_a_waybill() -> None:
    order = order_in("packed", waybill=None)
    with pytest.raises(GuardRefused, match="还没有运单号"):
        order.fire("ship", NOW)
    assert order.state == "packed"


def test_shipping_with_a_waybill_argument_fills_it_and_binds_the_automatic_actions() -> None:
    order = order_in("packed", waybill=None)
    order.fire("ship", NOW, waybill="SF0001")
    assert (order.state, order.waybill, order.shipped_at) == ("shipped", "SF0001", NOW)
    shipped = [e for e in order.events if isinstance(e, events.OrderShipped)]
    assert shipped == [
        events.OrderShipped("OB00000001", "SF0001", "SH01", (("BP-001", 2),), "C1", "13800000000", 39_800)
    ]


def test_no_shipping_while_an_address_change_is_pending() -> None:
    order = order_in("packed", address_change_pending=True)
    with pytest.raises(GuardRefused, match="确认改签 OB00000001"):
        order.fire("ship", NOW)


def test_no_completion_while_the_customer_is_on_settlement_hold() -> None:
    order = order_in("delivered", settlement_hold=True)
    with pytest.raises(GuardRefused, match="结算已冻结"):
        order.fire("complete", NOW)
    assert order.state == "delivered"


def test_no_address_change_after_shipping_names_time_and_waybill() -> None:
    order = order_in("shipped", shipped_at=NOW)
    with pytest.raises(GuardRefused) as refused:
        order.change_address("上海市徐汇区漕溪北路1号", NOW)
    assert "订单已发货，不能改地址（10:42 发货，运单 SF1234567890）" in refused.value.reason
    assert order.address == "上海市浦东新区张杨路500号"


def test_address_change_in_the_warehouse_voids_the_waybill_and_blocks_shipping() -> None:
    order = order_in("picking")
    assert order.change_address("上海市徐汇区漕溪北路1号", NOW) is True
    assert (order.address_change_pending, order.waybill) == (True, None)
    assert events.AddressChanged(
        "OB00000001", "上海市浦东新区张杨路500号", "上海市徐汇区漕溪北路1号", True, "SF1234567890"
    ) in order.events
    order.confirm_relabel("SF999", NOW)
    assert (order.address_change_pending, order.waybill) == (False, "SF999")


def test_address_change_before_the_warehouse_needs_no_relabel() -> None:
    order = order_in("paid", waybill=None)
    assert order.change_address("上海市徐汇区漕溪北路1号", NOW) is False
    assert order.address_change_pending is False


def test_cancel_from_the_warehouse_releases_the_reservation_but_not_before() -> None:
    in_warehouse, unallocated = order_in("picking"), order_in("paid")
    in_warehouse.fire("cancel", NOW)
    unallocated.fire("cancel", NOW)
    assert events.OrderCancelled("OB00000001", "SH01", (("BP-001", 2),), True) in in_warehouse.events
    assert events.OrderCancelled("OB00000001", "SH01", (("BP-001", 2),), False) in unallocated.events


def test_new_paid_order_is_paid_and_rejects_bad_lines() -> None:
    order = new_order(
        order_no="", channel="mini", external_id="W1", customer_id="C1", address="上海市浦东新区张杨路500号",
        lines=[OrderLine("BP-001", 1, 100)], at=NOW, paid=True,
    )
    assert order.state == "paid"
    with pytest.raises(InvalidInput, match="数量必须大于 0"):
        new_order(
            order_no="", channel="mini", external_id="W2", customer_id="C1", address="上海市浦东新区张杨路500号",
            lines=[OrderLine("BP-001", 0, 100)], at=NOW, paid=True,
        )


# ---- the table's per-state columns: on-enter callbacks, the automatic trigger, next step, done text

def test_allocating_to_a_store_binds_the_store_and_a_split_parent_keeps_none() -> None:
    child, parent = order_in("paid", store=None), order_in("paid", store=None)
    child.fire("allocate", NOW, store="SH02")
    parent.fire("allocate", NOW, children=["OB00000002", "OB00000003"])
    assert (child.state, child.store) == ("split", "SH02")
    assert (parent.state, parent.store) == ("split", None)


def test_packing_with_a_waybill_fills_it_and_without_one_keeps_the_old() -> None:
    typed, untyped = order_in("quality_check", waybill=None), order_in("quality_check")
    typed.fire("pack", NOW, waybill="SF0002")
    untyped.fire("pack", NOW)
    assert (typed.waybill, untyped.waybill) == ("SF0002", "SF1234567890")


def test_an_on_enter_event_comes_before_the_state_change_it_belongs_to() -> None:
    order = order_in("split")
    order.fire("cancel", NOW)
    assert [type(e) for e in order.events] == [events.OrderCancelled, events.OrderStateChanged]


def test_paid_is_the_one_state_with_an_automatic_trigger() -> None:
    assert {s: ORDER_LIFECYCLE.automatic(s) for s in STATES if ORDER_LIFECYCLE.automatic(s)} == {"paid": "allocate"}


@pytest.mark.parametrize(("state", "overrides", "command", "verb", "button", "text"), [
    ("split", {}, "pick", "拣货", "开始拣货", "拣货 OB00000001"),
    ("picking", {}, "check", "质检", "送质检", "质检 OB00000001"),
    ("quality_check", {}, "pack", "打包", "打包", "打包 OB00000001 [运单号]"),
    ("packed", {}, "ship", "发货", "发货", "发货 OB00000001"),
    ("packed", {"waybill": None}, "ship", "发货", "", "发货 OB00000001 <运单号>"),
    ("packed", {"waybill": None, "address_change_pending": True}, "relabel", "确认改签", "",
     "换贴新面单后发送：确认改签 OB00000001 <新运单号>"),
])
def test_the_next_step_column(
    state: str, overrides: dict[str, object], command: str, verb: str, button: str, text: str
) -> None:
    order = order_in(state, **overrides)
    step = ORDER_LIFECYCLE.next_step(order)
    assert step is not None
    assert (step.command, step.verb, step.button, step.text(order.order_no)) == (command, verb, button, text)
    assert step.key(order.order_no) == (f"{command} OB00000001" if button else "")


def test_a_step_with_a_button_is_legal_and_passes_its_guards_with_no_argument() -> None:
    """A tap carries no argument: the button is only offered when the trigger would run as it is."""
    for state in STATES:
        for overrides in ({}, {"waybill": None}, {"address_change_pending": True}):
            order = order_in(state, **overrides)
            step = ORDER_LIFECYCLE.next_step(order)
            if step is not None and step.button:
                ORDER_LIFECYCLE.check(order, step.command, {})


def test_every_state_names_a_persons_next_step_or_what_it_waits_for() -> None:
    waits = {s: ORDER_LIFECYCLE.waiting(s) for s in STATES if ORDER_LIFECYCLE.next_step(order_in(s)) is None}
    assert set(waits) == set(STATES) - {"split", "picking", "quality_check", "packed"}
    assert waits["shipped"] == "等待快递揽收" and waits["completed"] == waits["cancelled"] == "流程已结束"
    assert all(waits.values())


def test_every_trigger_has_a_done_text() -> None:
    assert [ORDER_LIFECYCLE.done_label(t) for t in ("pick", "check", "pack", "ship")] == [
        "已开始拣货", "已送质检", "已打包", "已发货"]
    assert all(ORDER_LIFECYCLE.done_label(t).strip() for t in TRIGGERS)
    assert ORDER_LIFECYCLE.done_label("teleport") == "teleport"


def test_a_table_whose_columns_name_an_illegal_trigger_is_refused_when_built() -> None:
    states = (StateSpec("a", "甲", automatic="go"), StateSpec("b", "乙"))
    with pytest.raises(ValueError, match="'go' is not legal from 'a'"):
        Lifecycle("broken", states, (TransitionSpec("go", ("b",), "a", "走"),))
    steps = (StateSpec("a", "甲", next=(NextStep("go", "走", "走"),)), StateSpec("b", "乙"))
    with pytest.raises(ValueError, match="'go' is not legal from 'a'"):
        Lifecycle("broken", steps, (TransitionSpec("go", ("b",), "a", "走"),))
