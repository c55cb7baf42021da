"""Channel "chat" when more than one platform is configured: each row is re-enqueued once per platform that
reaches its recipient, and each platform's row is then delivered (and retried) on its own.

A failure on one platform therefore never repeats the message on a platform that already has it. Fanning
out is one transaction, and the new rows' dedup keys ("fanout:<row id>:<channel>") make a second run for
the same row (a lapsed claim, another replica) add nothing.

Who gets what:
- a push goes to every configured platform the person is on: WeCom by userid (every user has one),
  DingTalk by dingtalk_id;
- a reply (its payload names the message it answers: `reply_to`) goes back only to the platform asked
  from, when that platform reaches the person; a DingTalk reply carries the question's sessionWebhook, if
  it had one;
- someone who is not a user (a refused stranger) is answered on the platform asked from, by the id they
  wrote from; a push to such an id goes to WeCom, as it did before fan-out;
- a card update only means something to WeCom.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from domain.clock import utcnow
from domain.outbox import ReplyTo
from domain.users import User
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.delivery.dingtalk_sender import SESSION_WEBHOOK
from integrations.delivery.dispatcher import OutboxRow, PermanentDelivery
from integrations.delivery.limiter import CARD_UPDATE

log = logging.getLogger(__name__)

WECOM_CHAT = "wecom_chat"
DINGTALK_CHAT = "dingtalk_chat"
_CHANNELS = {"wecom": WECOM_CHAT, "dingtalk": DINGTALK_CHAT}


class ChatFanout:
    def __init__(
        self,
        db: Database,
        *,
        wecom: bool,
        dingtalk: bool,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._platforms = {p for p, on in (("wecom", wecom), ("dingtalk", dingtalk)) if on}
        self._wake = wake  # the new rows are due now: let the dispatcher start its next pass
        self._clock = clock

    async def deliver(self, row: OutboxRow) -> None:
        try:
            async with UnitOfWork(self._db) as uow:
                user = await uow.users.get(row.recipient)
                targets = self._targets(row, user)
                if not targets:
                    if row.kind == CARD_UPDATE:
                        return  # nothing to update where this person is
                    raise PermanentDelivery(f"no configured platform reaches {row.recipient}")
                new = await self._rows(uow, row, targets)
                await uow.enqueue_many(new, at=self._clock())
                await uow.commit()
        except IntegrityError:
            log.info("outbox row %s was fanned out meanwhile by someone else", row.id)
        self._wake()

    def _targets(self, row: OutboxRow, user: User | None) -> dict[str, str]:
        """channel → recipient on that channel."""
        asked = ReplyTo.from_payload(row.payload)
        origin = asked.platform if asked else ""
        if row.kind == CARD_UPDATE:
            return {WECOM_CHAT: row.recipient} if "wecom" in self._platforms else {}
        if user is None:
            platform = origin if origin in self._platforms else "wecom"
            return {_CHANNELS[platform]: row.recipient} if platform in self._platforms else {}
        reach = {"wecom": user.userid, "dingtalk": user.dingtalk_id}
        on = {p: reach[p] for p in sorted(self._platforms) if reach[p]}
        if origin in on:
            on = {origin: on[origin]}
        return {_CHANNELS[p]: str(recipient) for p, recipient in on.items()}

    async def _rows(self, uow: UnitOfWork, row: OutboxRow, targets: dict[str, str]) -> list[dict[str, Any]]:
        keys = {channel: f"fanout:{row.id}:{channel}" for channel in targets}
        found = await uow.conn.execute(select(t.outbox.c.dedup_key).where(t.outbox.c.dedup_key.in_(keys.values())))
        done = {key for (key,) in found}
        new: list[dict[str, Any]] = []
        for channel, recipient in targets.items():
            if keys[channel] in done:
                continue
            payload = dict(row.payload)
            if channel == DINGTALK_CHAT:
                hint = await _session_hint(uow, ReplyTo.from_payload(row.payload))
                if hint:
                    payload[SESSION_WEBHOOK] = hint
            new.append({"channel": channel, "kind": row.kind, "recipient": recipient, "payload": payload,
                        "dedup_key": keys[channel], "urgent": row.urgent})
        return new


async def _session_hint(uow: UnitOfWork, asked: ReplyTo | None) -> str:
    """The reply hint of the DingTalk message a reply answers, from the inbox."""
    if asked is None or asked.platform != "dingtalk":
        return ""
    inbox = t.inbound_messages.c
    stmt = select(inbox.payload).where(inbox.platform == "dingtalk", inbox.message_id == asked.message_id)
    for (payload,) in await uow.conn.execute(stmt):
        if isinstance(payload, dict) and isinstance(payload.get("reply_hint"), str):
            return str(payload["reply_hint"])
    return ""
