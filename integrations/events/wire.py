"""An event's bytes: one canonical JSON form, so a re-sent event is the same bytes as the first send."""

from __future__ import annotations

import json

from integrations.db.events import PublishedEvent

SUBJECT_PREFIX = "orderbot.orders"


def body(event: PublishedEvent) -> bytes:
    return json.dumps(event.envelope(), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def subject(event: PublishedEvent, prefix: str = SUBJECT_PREFIX) -> str:
    """`orderbot.orders.<event>`, e.g. orderbot.orders.order.state_changed (subscribe to orderbot.orders.>)."""
    return f"{prefix}.{event.type}"
