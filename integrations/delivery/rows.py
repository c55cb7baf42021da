"""An outbox row as the dispatcher and its senders see it, and the outcomes a sender reports by exception."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.customers import masked_phone

DEFERRED_PREFIX = "deferred: "  # last_error of a row put off by a rate limit (not a failure)
_PLAIN_COLUMNS = ("id", "channel", "kind", "recipient", "payload", "attempts", "dedup_key", "last_error",
                  "urgent")


@dataclass(frozen=True)
class OutboxRow:
    id: int
    channel: str
    kind: str
    recipient: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    dedup_key: str | None = None
    claimed_until: datetime | None = None  # the claim this pass holds; also tells one pass's rows apart
    last_error: str = ""
    urgent: bool = False  # an exception push: claimed first, may use the limit's reserve, never merged

    @classmethod
    def from_mapping(cls, m: Mapping[Any, Any]) -> OutboxRow:
        plain = {name: m[name] for name in _PLAIN_COLUMNS}
        plain["urgent"] = bool(plain["urgent"])
        return cls(**plain, created_at=m["created_at"], claimed_until=m["claimed_until"])

    @property
    def deferred(self) -> bool:
        return self.last_error.startswith(DEFERRED_PREFIX)


def shown_recipient(row: OutboxRow) -> str:
    """A customer's phone number is masked wherever a row is shown (138****1234); a userid or robot key is not."""
    return masked_phone(row.recipient) if row.channel == "sms" else row.recipient


class RetryableDelivery(Exception):
    """The send may succeed later: try again after a back-off."""


class RecipientTrouble(RetryableDelivery):
    """Only this recipient cannot take it now (one store's printer is off), the channel itself is fine: retried
    with back-off like any failure, but not counted against the channel's breaker, so one recipient's trouble
    does not hold every other recipient's rows."""


class PermanentDelivery(Exception):
    """The send will never succeed: the row is dead."""


class DeferDelivery(Exception):
    """Not sent on purpose (a rate limit): try again at `until`, without counting an attempt."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until


class SetAside(Exception):
    """Not sent, on purpose, and not waiting to be: the row leaves the queue with `status` (e.g. "skipped" for a
    customer who opted out of texts, "unconfigured" for a channel with no settings), no attempt counted."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class LostClaim(Exception):
    """The row left our hands before it was sent (merged into a digest, or the claim lapsed): skip it."""
