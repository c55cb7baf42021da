"""Sender that delivers chat rows through the DingTalk robot: the sessionWebhook while valid, else batchSend.

With interactive cards configured, a card with buttons is created and delivered as an interactive card instead
(createAndDeliver into the robot's single chat); its outTrackId is the card's task id and the outbox row id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from domain.chat import Card, Reply, from_payload
from integrations.delivery.dispatcher import OutboxRow, PermanentDelivery, RetryableDelivery
from integrations.dingtalk.client import (
    DINGTALK_WEBHOOK_HOSTS,
    DingTalkClient,
    DingTalkRejected,
    DingTalkRetryable,
    SessionWebhook,
)
from integrations.dingtalk.render import (
    InteractiveCards,
    out_track_id,
    render_batch,
    render_interactive,
    render_webhook,
)

log = logging.getLogger(__name__)

SESSION_WEBHOOK = "session_webhook"  # payload key: the reply hint of the message this row answers

JsonObject = dict[str, Any]


class DingTalkChatSender:
    """Channel "dingtalk_chat": payload = handlers.chat.to_payload(...), optionally with SESSION_WEBHOOK;
    recipient = the person's DingTalk staff id."""

    def __init__(
        self, client: DingTalkClient, *, clock_ms: Callable[[], int] | None = None, cards: InteractiveCards | None = None,
        webhook_hosts: Collection[str] = DINGTALK_WEBHOOK_HOSTS,
    ) -> None:
        self._client = client
        self._clock_ms = clock_ms or _now_ms
        self._cards = cards
        self._webhook_hosts = tuple(webhook_hosts)  # session webhooks elsewhere are never posted to

    async def deliver(self, row: OutboxRow) -> None:
        try:
            item = from_payload(row.payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentDelivery(f"cannot render outbox row {row.id}: {exc!r}") from exc
        if self._cards is not None and isinstance(item, Card) and item.buttons:
            body = render_interactive(item, self._cards, robot_code=self._client.app_key, staff_id=row.recipient,
                                      out_track_id=out_track_id(item.task_id, row.id))
            await _translated(self._client.create_and_deliver(body))
            return
        webhook = SessionWebhook.parse(row.payload.get(SESSION_WEBHOOK))
        if webhook is not None and not webhook.allowed(self._webhook_hosts):
            log.warning("outbox row %s: its session webhook is not on an allowed host; using batchSend", row.id)
            webhook = None
        if webhook is not None and webhook.valid_at(self._clock_ms()):
            try:
                await _translated(self._client.session_reply(webhook.url, render_webhook(item)))
                return
            except PermanentDelivery as refused:  # the webhook is no good after all: push instead
                log.info("outbox row %s: session webhook refused (%s); using batchSend", row.id, refused)
        await self._push(row.recipient, item)

    async def _push(self, staff_id: str, item: Reply | Card) -> None:
        msg_key, msg_param = render_batch(item)
        await _translated(self._client.batch_send([staff_id], msg_key, msg_param))


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _translated(call: Awaitable[JsonObject]) -> JsonObject:
    try:
        return await call
    except DingTalkRetryable as exc:
        raise RetryableDelivery(str(exc)) from exc
    except DingTalkRejected as exc:
        raise PermanentDelivery(str(exc)) from exc
