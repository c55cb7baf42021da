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

from sqlalchemy import bindparam, select

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
    earlier = {"b_id": row.id, "b_low": row.id - LOOKBACK_ROWS, "b_channel": row.channel,
               "b_recipient": row.recipient, "b_kind": row.kind, "b_since": row.created_at - LOOKBACK}
    async with one_statement(db) as conn:
        content = _content(row.payload)
        if not any(_content(p) == content for (p,) in await conn.execute(_EARLIER, earlier)):
            return None
        question = {"b_platform": asked.platform, "b_message_id": asked.message_id}
        received = (await conn.execute(_QUESTION, question)).scalar_one_or_none()
    return received or row.created_at  # a question not kept in the inbox (the demo console): the answer's time


# built once: every answer delivered runs the first
_c = t.outbox.c
_EARLIER = select(_c.payload).where(
    _c.id < bindparam("b_id"), _c.id >= bindparam("b_low"), _c.channel == bindparam("b_channel"),
    _c.recipient == bindparam("b_recipient"), _c.kind == bindparam("b_kind"), _c.created_at >= bindparam("b_since"),
)
_inbox = t.inbound_messages.c
_QUESTION = select(_inbox.received_at).where(
    _inbox.platform == bindparam("b_platform"), _inbox.message_id == bindparam("b_message_id"))


def _content(payload: Any) -> Any:
    return {k: v for k, v in payload.items() if k not in _ROUTING_KEYS} if isinstance(payload, dict) else payload
