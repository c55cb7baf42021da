"""The Order aggregate: one customer order (or a store's child of a split order) and its lifecycle."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from domain import events
from domain.clock import hhmm
from domain.errors import GuardRefused, InvalidInput
from domain.order_lifecycle import IN_WAREHOUSE, ORDER_LIFECYCLE, SHIPPED_OR_LATER
from domain.waybills import WaybillIssued


@dataclass(frozen=True)
class OrderLine:
    sku: str
    qty: int
    unit_price_fen: int
    name: str = ""

    @property
    def amount_fen(self) -> int:
        return self.qty * self.unit_price_fen


@dataclass
class Order:
    order_no: str
    channel: str
    external_id: str
    customer_id: str
    address: str
    lines: list[OrderLine]
    created_at: datetime
    customer_name: str = ""
    customer_phone: str = ""
    store: str | None = None
    state: str = "pending_payment"
    waybill: str | None = None
    parent_no: str | None = None
    address_change_pending: bool = False
    settlement_hold: bool = False
    updated_at: datetime | None = None
    shipped_at: datetime | None = None
    version: int = 0
    events: list[events.Event] = field(default_factory=list, repr=False, compare=False)

    @property
    def amount_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)

    @property
    def items(self) -> tuple[tuple[str, int], ...]:
        return tuple((line.sku, line.qty) for line in self.lines)

    @property
    def state_label(self) -> str:
        return ORDER_LIFECYCLE.label(self.state)

    def fire(self, trigger: str, at: datetime, **ctx: Any) -> tuple[str, str]:
        """Run one lifecycle trigger. Refusals raise IllegalTransition / GuardRefused and change nothing."""
        before, after = ORDER_LIFECYCLE.fire(self, trigger, at=at, **ctx)
        self.updated_at = at
        detail = {k: v for k, v in ctx.items() if v and k != "reason"} or None
        self.events.append(
            events.OrderStateChanged(self.order_no, trigger, before, after, str(ctx.get("reason") or ""), detail)
        )
        return before, after

    def next_steps(self) -> list[str]:
        return ORDER_LIFECYCLE.next_triggers(self.state)

    # bound automatic actions (StateSpec.on_enter, TransitionSpec.before), called by the shared machine
    # with the trigger's ctx
    def _entered_split(self, store: str | None = None, **_: Any) -> None:
        if store:  # a split parent names no store: its children do
            self.store = store

    def _entered_packed(self, waybill: str | None = None, **_: Any) -> None:
        if waybill:
            self.waybill = waybill

    def _cancelling(self, **_: Any) -> None:
        """Still in the state it leaves: stock was reserved only if that is a warehouse state."""
        reserved = self.state in IN_WAREHOUSE and self.store is not None
        self.events.append(events.OrderCancelled(self.order_no, self.store, self.items, reserved))

    def _entered_shipped(self, at: datetime, waybill: str | None = None, **_: Any) -> None:
        if waybill:
            self.waybill = waybill
        self.shipped_at = at
        self.events.append(
            events.OrderShipped(
                self.order_no, self.waybill or "", self.store, self.items, self.customer_id,
                self.customer_phone, self.amount_fen,
            )
        )

    def change_address(self, new_address: str, at: datetime) -> bool:
        """Returns True when the parcel must be relabelled (the order is already in the warehouse)."""
        new_address = new_address.strip()
        if len(new_address) < 4:
            raise InvalidInput("新地址太短，请写清楚省市区、街道和门牌号。")
        if self.state in SHIPPED_OR_LATER:
            shipped = f"{hhmm(self.shipped_at)} 发货，" if self.shipped_at else ""
            raise GuardRefused(
                f"订单已发货，不能改地址（{shipped}运单 {self.waybill or '无'}）。请联系快递改派或走售后。"
            )
        if self.state == "cancelled":
            raise GuardRefused(f"订单 {self.order_no} 已取消，不能改地址。")
        if new_address == self.address:
            raise InvalidInput("新地址与原地址相同，无需修改。")
        old, voided = self.address, None
        needs_relabel = self.state in IN_WAREHOUSE
        if needs_relabel:
            voided, self.waybill = self.waybill, None
            self.address_change_pending = True
        self.address = new_address
        self.updated_at = at
        self.events.append(events.AddressChanged(self.order_no, old, new_address, needs_relabel, voided, self.state))
        return needs_relabel

    def assign_waybill(self, waybill: str, courier: str, provider: str, at: datetime, *, replaces: str = "") -> None:
        """An e-waybill taken for this packed order (after an address change: its new one, still to be relabelled)."""
        if self.state != "packed" or self.waybill:
            raise GuardRefused(f"订单 {self.order_no} 已不需要新运单（{self.state_label}，运单 {self.waybill or '无'}）。")
        self.waybill = waybill
        self.updated_at = at
        self.events.append(WaybillIssued(self.order_no, self.state, waybill, courier, provider, replaces))

    def confirm_relabel(self, waybill: str, at: datetime) -> None:
        if not self.address_change_pending:
            raise GuardRefused(f"订单 {self.order_no} 没有待换贴的面单。")
        waybill = waybill.strip() or (self.waybill or "")  # an e-waybill already issued for the new address
        if not waybill:
            raise InvalidInput("请写上新运单号：确认改签 <单号> <新运单号>")
        self.waybill = waybill
        self.address_change_pending = False
        self.updated_at = at
        self.events.append(events.RelabelConfirmed(self.order_no, self.state, self.waybill))


def new_order(
    *,
    order_no: str,
    channel: str,
    external_id: str,
    customer_id: str,
    address: str,
    lines: list[OrderLine],
    at: datetime,
    paid: bool,
    store: str | None = None,
    customer_name: str = "",
    customer_phone: str = "",
) -> Order:
    if not lines:
        raise InvalidInput("订单没有商品行。")
    for line in lines:
        if line.qty <= 0:
            raise InvalidInput(f"商品 {line.sku} 的数量必须大于 0。")
        if line.unit_price_fen < 0:
            raise InvalidInput(f"商品 {line.sku} 的单价不能为负。")
    order = Order(
        order_no=order_no,
        channel=channel,
        external_id=external_id,
        customer_id=customer_id,
        customer_name=customer_name,
        customer_phone=customer_phone,
        address=address,
        lines=lines,
        store=store,
        created_at=at,
        updated_at=at,
    )
    if paid:  # paid on arrival: the trail says "created, paid" in one line, the pay reactions still run
        order.fire("pay", at)
        paying = order.events.pop()
        assert isinstance(paying, events.OrderStateChanged)
        order.events.append(replace(paying, part_of_creation=True))
    order.events.append(events.OrderCreated(order_no, channel, order.state, external_id))
    return order
