"""Senders that deliver outbox rows through WeCom: app messages to people, and group-robot messages."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from domain.chat import Reply, from_payload
from integrations.delivery.answers import repeat_stamp
from integrations.delivery.limiter import CARD_UPDATE, Admission, RecipientLimiter, plain, short
from integrations.delivery.rows import OutboxRow, PermanentDelivery, RetryableDelivery
from integrations.wecom.client import WeComClient, WeComError, WeComRejected
from integrations.wecom.render import render_card_update, render_message

JsonObject = dict[str, Any]


class WeComChatSender:
    """Channel "chat": payload = handlers.chat.to_payload(...), recipient = our (WeCom) userid."""

    def __init__(self, client: WeComClient, agent_id: int, limiter: RecipientLimiter) -> None:
        self._client = client
        self._agent_id = agent_id
        self._limiter = limiter

    async def deliver(self, row: OutboxRow) -> None:
        if row.kind == CARD_UPDATE:
            await _translated(self._client.update_template_card(self._card_update(row)))
            return
        asked_at = await repeat_stamp(self._limiter.db, row)
        admission = await self._limiter.admit(row)
        try:
            payload = self._message(row, admission, asked_at)
        except (KeyError, TypeError, ValueError) as exc:
            await self._limiter.release(admission, maybe_shown=False)
            raise PermanentDelivery(f"cannot render outbox row {row.id}: {exc!r}") from exc
        await _sent_admitted(self._client.send(payload), self._limiter, admission)

    def _message(self, row: OutboxRow, admission: Admission, asked_at: datetime | None) -> JsonObject:
        if admission.is_bundle:
            return render_message(row.recipient, self._agent_id, Reply(self._limiter.bundle_text(admission), True))
        if admission.is_digest:
            return render_message(row.recipient, self._agent_id, Reply(self._limiter.digest_text(admission)))
        return render_message(row.recipient, self._agent_id, from_payload(row.payload), asked_at=asked_at)

    def _card_update(self, row: OutboxRow) -> JsonObject:
        try:
            p = row.payload
            return render_card_update(
                list(p["userids"]), self._agent_id, str(p["response_code"]), str(p["replace_text"])
            )
        except (KeyError, TypeError) as exc:
            raise PermanentDelivery(f"card_update row {row.id} lacks {exc}") from exc


class WeComGroupSender:
    """Channel "wecom_group": payload = the webhook JSON, recipient = the robot key."""

    def __init__(self, client: WeComClient, limiter: RecipientLimiter) -> None:
        self._client = client
        self._limiter = limiter

    async def deliver(self, row: OutboxRow) -> None:
        admission = await self._limiter.admit(row)
        payload = row.payload
        if admission.is_digest:
            payload = {"msgtype": "text", "text": {"content": self._limiter.digest_text(admission)}}
        await _sent_admitted(self._client.webhook_send(row.recipient, payload), self._limiter, admission)


def group_line(row: OutboxRow) -> str:
    """One digest line for a group-robot webhook payload."""
    msgtype = str(row.payload.get("msgtype", ""))
    body = row.payload.get(msgtype)
    if msgtype in ("text", "markdown") and isinstance(body, dict):
        return short(plain(str(body.get("content", ""))))
    return f"[{msgtype or '消息'}]"


async def _sent_admitted(
    call: Awaitable[JsonObject], limiter: RecipientLimiter, admission: Admission
) -> None:
    """Send; on success the merged rows are delivered too, on failure they are free to be claimed again — and
    the slot counts as used when WeCom may have shown the message after all."""
    try:
        await call
    except WeComError as exc:
        await limiter.release(admission, maybe_shown=exc.maybe_done)
        raise _delivery_error(exc) from exc
    await limiter.settle(admission)


async def _translated(call: Awaitable[JsonObject]) -> JsonObject:
    try:
        return await call
    except WeComError as exc:
        raise _delivery_error(exc) from exc


def _delivery_error(exc: WeComError) -> Exception:
    """WeComRejected: never going to work; WeComRetryable (and anything else from WeCom): may work later."""
    return PermanentDelivery(str(exc)) if isinstance(exc, WeComRejected) else RetryableDelivery(str(exc))
