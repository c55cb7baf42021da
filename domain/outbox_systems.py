"""Typed outbox messages to other systems rather than people: courier tracking subscriptions, shipments told
back to the sales channels, labels to the store printers, bookings in K3 Cloud and e-waybill requests.

Like the chat and SMS messages in domain/outbox.py, each is an `OutboxMessage` committed with the change it
reports; `label_data` / `label_from_data` turn a printed label into the row's JSON and back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from domain.labels import EncryptedPrint, Label, Party
from domain.outbox import OutboxMessage


@dataclass(frozen=True)
class TrackingSubscription(OutboxMessage):
    """Ask the courier-tracking service to push this waybill's scans to us; once per waybill, ever."""

    channel: ClassVar[str] = "courier"
    waybill: str
    order_no: str
    phone: str = ""

    @property
    def kind(self) -> str:
        return "subscribe"

    @property
    def recipient(self) -> str:
        return self.waybill

    @property
    def dedup_key(self) -> str | None:
        return f"courier:subscribe:{self.waybill}"

    def payload(self) -> dict[str, Any]:
        return {"waybill": self.waybill, "order_no": self.order_no, "phone": self.phone}


CHANNEL_SHIP = "channel_ship"


@dataclass(frozen=True)
class ChannelShipment(OutboxMessage):
    """A shipped order's waybill told back to the platform that sold it (Douyin's ship-confirm, the mini-program's
    shipping-info upload), so the buyer sees the tracking where they bought. kind = the platform."""

    channel: ClassVar[str] = CHANNEL_SHIP
    platform: str  # "douyin" | "miniprogram"
    order_no: str
    external_id: str  # the platform's order id: Douyin's shop_order_id, the mini-program's out_trade_no
    waybill: str
    courier: str = ""  # our courier code (Kuaidi100's, e.g. "shunfeng"); empty: read from the waybill's prefix
    item_desc: str = ""  # what was sent, in words (刹车片×2)
    payer: str = ""  # the buyer's openid (mini-program)
    receiver_phone: str = ""  # masked (138****1234): WeChat asks for it with SF waybills

    @property
    def kind(self) -> str:
        return self.platform

    @property
    def recipient(self) -> str:
        return f"{self.platform}:{self.external_id}"

    @property
    def dedup_key(self) -> str | None:
        return f"{CHANNEL_SHIP}:{self.platform}:{self.order_no}:{self.waybill}"

    def payload(self) -> dict[str, Any]:
        return {"order_no": self.order_no, "external_id": self.external_id, "waybill": self.waybill,
                "courier": self.courier, "item_desc": self.item_desc, "payer": self.payer,
                "receiver_phone": self.receiver_phone}


@dataclass(frozen=True)
class PrintLabel(OutboxMessage):
    """A label to the printer of the store that packs the order (`PRINTING__PRINTERS` maps store → printer URL).
    `copy` is 0 for the first print and counts reprints (`重打`), so each print is its own row."""

    channel: ClassVar[str] = "print"
    store: str
    label: Label | EncryptedPrint
    copy: int = 0

    @property
    def kind(self) -> str:
        return "encrypted_label" if isinstance(self.label, EncryptedPrint) else "label"

    @property
    def recipient(self) -> str:
        return self.store

    @property
    def dedup_key(self) -> str | None:
        return f"print:{self.label.order_no}:{self.label.waybill}:{self.copy}"

    def payload(self) -> dict[str, Any]:
        return {"copy": self.copy, "label": label_data(self.label)}


def label_data(label: Label | EncryptedPrint) -> dict[str, Any]:
    """The label as JSON data for the outbox row; `label_from_data` reads it back."""
    if isinstance(label, EncryptedPrint):
        return {"type": "encrypted", "order_no": label.order_no, "waybill": label.waybill,
                "print_data": label.print_data}
    data = asdict(label)
    data["type"] = "label"
    return data


def label_from_data(data: dict[str, Any]) -> Label | EncryptedPrint:
    fields = {k: v for k, v in data.items() if k != "type"}
    if data.get("type") == "encrypted":
        return EncryptedPrint(**fields)
    fields["sender"] = Party(**fields["sender"])
    fields["receiver"] = Party(**fields["receiver"])
    return Label(**fields)


K3_RECEIVABLE, K3_RED_RECEIVABLE = "receivable", "red_receivable"


@dataclass(frozen=True)
class K3Booking(OutboxMessage):
    """A document for the books in K3 Cloud: the receivable (应收单) of a shipped order, or the red receivable
    (红字应收单) of an approved refund. `ref` is what it is booked for (the order or the after-sale number) and is
    what makes a retried booking find the first one instead of booking twice. Recipient = the order, so an order's
    red receivable waits behind its receivable."""

    channel: ClassVar[str] = "k3"
    about: str  # K3_RECEIVABLE | K3_RED_RECEIVABLE
    order_no: str
    ref: str
    customer_id: str
    k3_customer: str  # the customer's K3 number where known ("" : the K3 settings' default customer)
    lines: tuple[tuple[str, str, int, int], ...]  # (sku, name, qty, unit price in fen) of the order
    amount_fen: int  # the order's amount, or the refund's
    booked_on: str  # the business date (FDATE), Beijing time, YYYY-MM-DD

    @property
    def kind(self) -> str:
        return self.about

    @property
    def recipient(self) -> str:
        return self.order_no

    @property
    def dedup_key(self) -> str | None:
        return f"k3:{self.about}:{self.ref}"

    def payload(self) -> dict[str, Any]:
        return {"order_no": self.order_no, "ref": self.ref, "customer_id": self.customer_id,
                "k3_customer": self.k3_customer, "amount_fen": self.amount_fen, "booked_on": self.booked_on,
                "lines": [{"sku": s, "name": n, "qty": q, "unit_price_fen": p} for s, n, q, p in self.lines]}


@dataclass(frozen=True)
class WaybillRequest(OutboxMessage):
    """Take an e-waybill for a packed order from the store's provider (integrations/waybills), committed with the
    打包 transition or with the address change that voids the old one (`discard`: discarded at the provider first).
    `request_id` is the provider's idempotency key (Cainiao objectId and trade order id, Kuaidi100 orderId), so a
    retry after a time-out gets the same number instead of a second one."""

    channel: ClassVar[str] = "waybill"
    order_no: str
    store: str
    request_id: str
    sender: Party
    receiver: Party
    items: str = ""
    count: int = 1
    discard: str = ""
    asked_by: str = ""  # who packed: told what was printed where

    @property
    def kind(self) -> str:
        return "relabel" if self.discard else "get"

    @property
    def recipient(self) -> str:
        return self.store

    @property
    def dedup_key(self) -> str | None:
        return f"waybill:{self.request_id}"

    def payload(self) -> dict[str, Any]:
        return {"order_no": self.order_no, "request_id": self.request_id, "sender": asdict(self.sender),
                "receiver": asdict(self.receiver), "items": self.items, "count": self.count, "discard": self.discard,
                "asked_by": self.asked_by}

    @classmethod
    def from_payload(cls, store: str, data: dict[str, Any]) -> WaybillRequest:
        return cls(str(data["order_no"]), store, str(data["request_id"]), Party(**data["sender"]),
                   Party(**data["receiver"]), str(data.get("items", "")), int(data.get("count", 1)),
                   str(data.get("discard", "")), str(data.get("asked_by", "")))
