"""Commands: what someone asks the system to do, in the imperative. `by` is the actor, `via` the channel."""

from __future__ import annotations

from dataclasses import dataclass


class Command:
    by: str
    via: str


@dataclass(frozen=True)
class LineInput:
    sku: str
    qty: int
    unit_price_fen: int
    name: str = ""


@dataclass(frozen=True)
class CreateOrder(Command):
    channel: str
    external_id: str
    customer_id: str
    address: str
    lines: tuple[LineInput, ...]
    paid: bool
    by: str
    via: str
    store: str | None = None
    customer_name: str = ""
    customer_phone: str = ""


@dataclass(frozen=True)
class FireOrderTrigger(Command):
    """pay, pick, check, pack, ship, pick_up, deliver, report_exception, resolve_exception, complete, cancel."""

    order_no: str
    trigger: str
    by: str
    via: str
    waybill: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class ChangeAddress(Command):
    order_no: str
    new_address: str
    by: str
    via: str


@dataclass(frozen=True)
class ConfirmRelabel(Command):
    order_no: str
    waybill: str
    by: str
    via: str


@dataclass(frozen=True)
class SetStock(Command):
    store: str
    sku: str
    on_hand: int
    by: str
    via: str


@dataclass(frozen=True)
class OpenAfterSale(Command):
    order_no: str
    kind: str
    reason: str
    amount_fen: int
    by: str
    via: str


@dataclass(frozen=True)
class ApproveAfterSale(Command):
    aftersale_no: str
    by: str
    via: str


@dataclass(frozen=True)
class RejectAfterSale(Command):
    aftersale_no: str
    by: str
    via: str
    reason: str = ""


@dataclass(frozen=True)
class FireOrderTriggers(Command):
    """One trigger for many orders in one unit of work: a scanned wave, a courier pickup, a tracking sweep.

    Each order is checked on its own: refusals are reported per order and do not stop the others.
    """

    order_nos: tuple[str, ...]
    trigger: str
    by: str
    via: str
    waybills: tuple[tuple[str, str], ...] = ()  # (order_no, waybill) where the trigger fills one
