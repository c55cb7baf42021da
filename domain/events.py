"""Domain events: facts in the past tense, collected from aggregates and handled in the same unit of work."""

from __future__ import annotations

from dataclasses import dataclass


class Event:
    pass


@dataclass(frozen=True)
class OrderCreated(Event):
    order_no: str
    channel: str
    state: str


@dataclass(frozen=True)
class OrderStateChanged(Event):
    order_no: str
    trigger: str
    from_state: str
    to_state: str


@dataclass(frozen=True)
class OrderAllocated(Event):
    order_no: str
    store: str


@dataclass(frozen=True)
class OrderOutOfStock(Event):
    order_no: str
    skus: tuple[str, ...]


@dataclass(frozen=True)
class OrderShipped(Event):
    """Entering `shipped` binds: fill the waybill, text the customer, create the receivable."""

    order_no: str
    waybill: str
    store: str | None
    items: tuple[tuple[str, int], ...]
    customer_id: str
    customer_phone: str
    amount_fen: int


@dataclass(frozen=True)
class OrderCancelled(Event):
    order_no: str
    store: str | None
    items: tuple[tuple[str, int], ...]
    was_reserved: bool


@dataclass(frozen=True)
class AddressChanged(Event):
    order_no: str
    old_address: str
    new_address: str
    needs_relabel: bool
    voided_waybill: str | None


@dataclass(frozen=True)
class AfterSaleOpened(Event):
    aftersale_no: str
    order_no: str
    amount_fen: int
    needs_approval: bool
    needs_manager: bool = False  # the order's total with this request is above the dual-approval line


@dataclass(frozen=True)
class AfterSaleStateChanged(Event):
    aftersale_no: str
    trigger: str
    from_state: str
    to_state: str


@dataclass(frozen=True)
class RefundApproved(Event):
    aftersale_no: str
    order_no: str
    amount_fen: int
    approvers: tuple[str, ...]


@dataclass(frozen=True)
class RefundRejected(Event):
    aftersale_no: str
    order_no: str
    by: str
    reason: str


@dataclass(frozen=True)
class ApprovalRecorded(Event):
    """A first approval of a large refund; a manager's approval is still needed."""

    aftersale_no: str
    by: str
    still_needs: str
