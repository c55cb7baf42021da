"""Interactive cards we issued, found again from the outbox row that sent them.

A click is honoured only for a card we sent (its outTrackId), from the person we sent it to, with the command of
one of its buttons. No table of its own: the "dingtalk_chat" outbox row that created the card keeps the
recipient's staff id and the card with its buttons, and its id ends the outTrackId
(integrations/dingtalk/render.py `out_track_id`). Outbox rows live in the shared database and are not deleted, so
every replica can check a click on a card that another one sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, select

from domain.chat import Card, from_payload
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.delivery.fanout import DINGTALK_CHAT
from integrations.dingtalk.render import MAX_CARD_BUTTONS, out_track_id, outbox_row_of


@dataclass(frozen=True)
class IssuedCard:
    card_id: str  # the outTrackId
    recipient: str  # the DingTalk staff id it was delivered to
    commands: frozenset[str]  # what its buttons send (their keys)


async def issued_card(db: Database, card_id: str) -> IssuedCard | None:
    """The card with outTrackId `card_id` as we sent it, or None when we never sent such a card."""
    row_id = outbox_row_of(card_id)
    if row_id is None:
        return None
    outbox = t.outbox.c
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(outbox.id, outbox.recipient, outbox.payload).where(
            and_(outbox.id == row_id, outbox.channel == DINGTALK_CHAT)))).first()
    if row is None or not isinstance(row.payload, dict):
        return None
    try:
        card = from_payload(row.payload)
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(card, Card) or not card.buttons or out_track_id(card.task_id, row.id) != card_id:
        return None
    return IssuedCard(card_id, row.recipient, frozenset(b.key for b in card.buttons[:MAX_CARD_BUTTONS]))
