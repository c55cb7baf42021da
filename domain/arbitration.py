"""Logistics arbitration: what to do when the warehouse, the courier and the customer tell different stories.

The rule of the case: a parcel the courier reports signed before we scanned it out (or while we have not
shipped it at all) is a conflict. The order is not advanced; a person must look, and the customer's
settlement is held until they do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.clock import local
from domain.commands import Command
from domain.order_lifecycle import BEFORE_SHIPPING, ORDER_LIFECYCLE

# what a courier reports, reduced to what arbitration needs (Kuaidi100 state codes map onto these)
NO_TRACK = "none"  # nothing known yet
PICKED_UP = "picked_up"
IN_TRANSIT = "in_transit"
SIGNED = "signed"
PROBLEM = "problem"  # 疑难, 退签, 拒签, 退回: the courier reports trouble


@dataclass(frozen=True)
class CourierReport:
    waybill: str
    status: str
    signed_at: datetime | None = None
    last_at: datetime | None = None
    last_context: str = ""


@dataclass(frozen=True)
class WarehouseView:
    order_no: str
    state: str
    shipped_at: datetime | None


@dataclass(frozen=True)
class Verdict:
    """Either a lifecycle trigger to fire, a conflict to raise, or nothing (trigger and conflict empty)."""

    order_no: str
    trigger: str = ""
    conflict: str = ""  # the reason, in Chinese, for the person who must look


@dataclass(frozen=True)
class LogisticsConflict:
    order_no: str
    customer_id: str
    store: str | None
    waybill: str
    reason: str


@dataclass(frozen=True)
class FlagLogisticsConflicts(Command):
    """Record conflicts found by a tracking sweep: exception rows, a highlighted push, settlement holds."""

    conflicts: tuple[LogisticsConflict, ...]
    by: str
    via: str


def arbitrate(
    warehouse: WarehouseView, courier: CourierReport, *, customer_says_received: bool | None = None
) -> Verdict:
    """Compare the three views. `customer_says_received` is None when the customer has said nothing."""
    no, state = warehouse.order_no, warehouse.state
    if courier.status == NO_TRACK:
        return Verdict(no)
    if courier.status == SIGNED:
        if state in BEFORE_SHIPPING:
            return Verdict(no, conflict=f"快递显示已签收{_at(courier.signed_at)}，但仓库尚未出库（当前「{_label(state)}」）")
        if warehouse.shipped_at and courier.signed_at and courier.signed_at < warehouse.shipped_at:
            return Verdict(
                no, conflict=f"签收时间{_at(courier.signed_at)}早于出库时间{_at(warehouse.shipped_at)}"
            )
        if customer_says_received is False:
            return Verdict(no, conflict=f"快递显示已签收{_at(courier.signed_at)}，客户称未收到")
        return Verdict(no, trigger="deliver") if state in ("shipped", "in_transit") else Verdict(no)
    if state in BEFORE_SHIPPING:  # moving, or in trouble, while the warehouse says it never left
        return Verdict(no, conflict=f"快递已有轨迹（{courier.last_context or courier.status}），但仓库尚未出库（当前「{_label(state)}」）")
    if courier.status == PROBLEM and state in ("shipped", "in_transit"):
        return Verdict(no, trigger="report_exception")
    if courier.status in (PICKED_UP, IN_TRANSIT) and state == "shipped":
        return Verdict(no, trigger="pick_up")
    return Verdict(no)


def _label(state: str) -> str:
    return ORDER_LIFECYCLE.label(state)


def _at(at: datetime | None) -> str:
    return f"（{local(at):%m-%d %H:%M}）" if at else ""
