"""Typed outbound messages: what a use case asks to send, committed to the outbox with the change it reports.

Each type knows its channel, kind, recipient, de-duplication key and payload; where an answer goes (the
platform and message it answers) travels as data in the payload, not as a convention inside a key.

This module holds the base type and the messages to people (chat pushes, card updates, customer texts); the
messages to other systems (courier, sales channels, printers, K3, waybill providers) are in
domain/outbox_systems.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from domain.chat import Card, Reply, to_payload

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
