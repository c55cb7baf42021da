"""The 12-state order lifecycle of DESIGN.md, as a table. State ids are part of the external contract."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.lifecycle import Lifecycle, NextStep, StateSpec, TransitionSpec

BEFORE_SHIPPING = ("pending_payment", "paid", "split", "picking", "quality_check", "packed")
IN_WAREHOUSE = ("split", "picking", "quality_check", "packed")
SHIPPED_OR_LATER = ("shipped", "in_transit", "delivered", "delivery_exception", "completed")


def relabel_pending(order: Any) -> bool:
    return bool(order.address_change_pending)


def lacks_waybill(order: Any) -> bool:
    return not order.waybill


ENDED = "流程已结束"

STATES = (
    StateSpec("pending_payment", "待支付", waiting="等待客户付款"),
    StateSpec("paid", "已支付", waiting="等待分配门店（缺货时补货后自动重新分配）", automatic="allocate"),
    StateSpec("split", "已拆单", on_enter=("_entered_split",), next=(NextStep("pick", "拣货", "开始拣货"),)),
    StateSpec("picking", "拣货中", next=(NextStep("check", "质检", "送质检"),)),
    StateSpec("quality_check", "质检中", next=(NextStep("pack", "打包", "打包", args="[运单号]"),)),
    StateSpec("packed", "待出库", on_enter=("_entered_packed",), next=(
        NextStep("relabel", "确认改签", args="<新运单号>", lead="换贴新面单后发送：", when=relabel_pending),
        NextStep("ship", "发货", args="<运单号>", when=lacks_waybill),
        NextStep("ship", "发货", "发货"),
    )),
    StateSpec("shipped", "已发货", on_enter=("_entered_shipped",), waiting="等待快递揽收"),
    StateSpec("in_transit", "运输中", waiting="等待签收"),
    StateSpec("delivered", "已签收", waiting="等待结算完成"),
    StateSpec("delivery_exception", "签收异常", waiting="主管核实签收异常"),
    StateSpec("completed", "已完成", waiting=ENDED),
    StateSpec("cancelled", "已取消", waiting=ENDED),
)


def needs_waybill(order: Any, ctx: Mapping[str, Any]) -> str | None:
    if ctx.get("waybill") or order.waybill:
        return None
    return f"订单 {order.order_no} 还没有运单号，不能发货。请发送：发货 {order.order_no} <运单号>"


def no_pending_address_change(order: Any, ctx: Mapping[str, Any]) -> str | None:
    if not order.address_change_pending:
        return None
    return (
        f"订单 {order.order_no} 的收货地址已改，需先换贴新面单。"
        f"贴好后发送：确认改签 {order.order_no} <新运单号>"
    )


def no_settlement_hold(order: Any, ctx: Mapping[str, Any]) -> str | None:
    if not order.settlement_hold:
        return None
    return f"客户 {order.customer_id} 的结算已冻结（物流冲突待核实），订单 {order.order_no} 暂不能结算完成。请主管核实后发送：解冻 {order.customer_id}"


def has_store(order: Any, ctx: Mapping[str, Any]) -> str | None:
    if ctx.get("store") or order.store or ctx.get("children"):
        return None
    return f"订单 {order.order_no} 没有可分配的门店。"


TABLE = (
    TransitionSpec("pay", ("pending_payment",), "paid", "确认支付", done="已确认支付"),
    TransitionSpec("allocate", ("paid",), "split", "拆单分配", guards=(has_store,), done="已分配门店"),
    TransitionSpec("pick", ("split",), "picking", "开始拣货", done="已开始拣货"),
    TransitionSpec("check", ("picking",), "quality_check", "质检", done="已送质检"),
    TransitionSpec("pack", ("quality_check",), "packed", "打包", done="已打包"),
    TransitionSpec(
        "ship", ("packed",), "shipped", "发货", guards=(needs_waybill, no_pending_address_change), done="已发货"
    ),
    TransitionSpec("pick_up", ("shipped",), "in_transit", "快递揽收", done="快递已揽收"),
    TransitionSpec("deliver", ("shipped", "in_transit"), "delivered", "签收", done="已签收"),
    TransitionSpec(
        "report_exception", ("shipped", "in_transit", "delivered"), "delivery_exception", "报签收异常",
        done="已报签收异常",
    ),
    TransitionSpec("resolve_exception", ("delivery_exception",), "delivered", "异常处理完毕", done="异常已处理完毕"),
    TransitionSpec("complete", ("delivered",), "completed", "结算完成", guards=(no_settlement_hold,), done="已结算完成"),
    TransitionSpec("cancel", BEFORE_SHIPPING, "cancelled", "取消", before=("_cancelling",), done="已取消"),
)

ORDER_LIFECYCLE = Lifecycle("order", STATES, TABLE)
