"""Typed outbound messages: what a use case asks to send, committed to the outbox with the change it reports.

Each type knows its channel, kind, recipient, de-duplication key and payload; where an answer goes (the
platform and message it answers) travels as data in the payload, not as a convention inside a key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from domain.chat import Card, Reply, to_payload
from domain.labels import EncryptedPrint, Label, Party

REPLY_TO = "reply_to"  # the payload key naming the message an answer answers


@dataclass(frozen=True)
class ReplyTo:
    platform: str  # "wecom" | "dingtalk" | "console"
    message_id: str

    def as_data(self) -> dict[str, str]:
        return {"platform": self.platform, "message_id": self.message_id}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ReplyTo | None:
        data = payload.get(REPLY_TO)
        if not isinstance(data, dict):
            return None
        return cls(str(data.get("platform", "")), str(data.get("message_id", "")))


class OutboxMessage:
    channel: ClassVar[str]
    urgent: bool = False  # an exception push: claimed before routine rows, may use the limit's reserve, never merged

    @property
    def kind(self) -> str:
        raise NotImplementedError

    @property
    def recipient(self) -> str:
        raise NotImplementedError

    @property
    def dedup_key(self) -> str | None:
        return None

    def payload(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class ChatPush(OutboxMessage):
    """A message or card to one person, on every platform that reaches them — or, for an answer, on the
    platform the question came from."""

    channel: ClassVar[str] = "chat"
    userid: str
    message: Reply | Card
    key: str | None = None
    reply_to: ReplyTo | None = None
    urgent: bool = False  # an exception (address change, logistics conflict, stuck order): never waits behind routine

    @property
    def kind(self) -> str:
        return "card" if isinstance(self.message, Card) else "message"

    @property
    def recipient(self) -> str:
        return self.userid

    @property
    def dedup_key(self) -> str | None:
        return self.key

    def payload(self) -> dict[str, Any]:
        body = to_payload(self.message)
        if self.reply_to is not None:
            body[REPLY_TO] = self.reply_to.as_data()
        return body


@dataclass(frozen=True)
class CardUpdate(OutboxMessage):
    """A clicked card's buttons replaced by who acted and when; one use per response code."""

    channel: ClassVar[str] = "chat"
    userid: str
    response_code: str
    replace_text: str

    @property
    def kind(self) -> str:
        return "card_update"

    @property
    def recipient(self) -> str:
        return self.userid

    @property
    def dedup_key(self) -> str | None:
        return f"card:{self.response_code}"

    def payload(self) -> dict[str, Any]:
        return {"userids": [self.userid], "response_code": self.response_code, "replace_text": self.replace_text}


SMS_SHIPPED, SMS_ADDRESS_CHANGED, SMS_REFUND = "order_shipped", "address_changed", "refund_approved"


@dataclass(frozen=True)
class CustomerText(OutboxMessage):
    """A text message (SMS) to a customer's phone. The provider sends a registered template filled with
    `params` (names as registered); `text` is the same message in words, for people reading the outbox."""

    channel: ClassVar[str] = "sms"
    phone: str
    text: str
    about: str  # what it tells, e.g. "order_shipped": picks the template
    key: str
    params: tuple[tuple[str, str], ...] = ()
    customer_id: str = ""  # whose opt-out applies
    order_no: str = ""  # what customer service looks up when the text cannot be sent
    urgent: bool = False  # sent in quiet hours too

    @property
    def kind(self) -> str:
        return self.about

    @property
    def recipient(self) -> str:
        return self.phone

    @property
    def dedup_key(self) -> str | None:
        return self.key

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "params": dict(self.params), "customer_id": self.customer_id,
                "order_no": self.order_no, "urgent": self.urgent}


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
