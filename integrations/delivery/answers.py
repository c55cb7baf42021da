"""Two answers that would look the same: the second names the time of its question, so WeCom's duplicate check
(which compares content, not our rows) shows both — while a re-send of one answer stays the same to the byte.

Whether an answer is stamped depends only on what never changes once committed — the rows before it, their
content and creation time — so every re-send of the row makes the same choice. The look-back reads a bounded
range of ids on the primary key (LOOKBACK_ROWS, ample for the minutes that matter even at peak), not the
recipient's whole history.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from domain.outbox import REPLY_TO, ReplyTo
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.delivery.rows import OutboxRow
from integrations.delivery.statements import one_statement
from integrations.wecom.render import DUPLICATE_CHECK_INTERVAL_S

LOOKBACK_ROWS = 5000
LOOKBACK = timedelta(seconds=2 * DUPLICATE_CHECK_INTERVAL_S)  # the earlier row may have gone out late
_ROUTING_KEYS = frozenset({REPLY_TO, "session_webhook"})  # where an answer goes, not what it says


async def repeat_stamp(db: Database, row: OutboxRow) -> datetime | None:
    """The question's time when `row` is an answer whose content an earlier row to the same person already
    carried within the look-back; else None (nothing to tell apart)."""
    asked = ReplyTo.from_payload(row.payload)
    if asked is None:
        return None
    c = t.outbox.c
    earlier = select(c.payload).where(
        c.id < row.id, c.id >= row.id - LOOKBACK_ROWS, c.channel == row.channel, c.recipient == row.recipient,
        c.kind == row.kind, c.created_at >= row.created_at - LOOKBACK,
    )
    inbox = t.inbound_messages.c
    question = select(inbox.received_at).where(inbox.platform == asked.platform, inbox.message_id == asked.message_id)
    async with one_statement(db) as conn:
        content = _content(row.payload)
        if not any(_content(p) == content for (p,) in await conn.execute(earlier)):
            return None
        received = (await conn.execute(question)).scalar_one_or_none()
    return received or row.created_at  # a question not kept in the inbox (the demo console): the answer's time


def _content(payload: Any) -> Any:
    return {k: v for k, v in payload.items() if k not in _ROUTING_KEYS} if isinstance(payload, dict) else payload
