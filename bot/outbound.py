"""The outbound effects besides chat, each written once here: its app context (clients from its settings), its
senders by outbox channel, and its dead-row tasks (`on_dead` for the dispatcher, and `report()` at each start for
rows that died before it). Chat, group robots and courier subscriptions are wired in bot/app.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot import books, channel_shipments, printing, sms, waybills
from integrations.delivery.dead_tasks import DeadRowTasks
from integrations.delivery.dispatcher import Sender


@dataclass(frozen=True)
class Effect:
    ctx: Callable[[web.Application], AsyncIterator[None]]
    senders: Callable[[web.Application], dict[str, Sender]]
    dead: web.AppKey[Any]


EFFECTS = (
    Effect(sms.sms_ctx, sms.sms_senders, sms.SMS_DEAD),  # customer texts
    Effect(books.books_ctx, books.books_senders, books.K3_DEAD),  # receivables in K3
    Effect(waybills.waybill_ctx, waybills.waybill_senders, waybills.WAYBILL_DEAD),  # e-waybills
    Effect(printing.printing_ctx, printing.print_senders, printing.PRINT_TROUBLE),  # labels
    Effect(channel_shipments.channel_ship_ctx, channel_shipments.ship_senders, channel_shipments.SHIP_DEAD),
)


def effect_senders(app: web.Application) -> dict[str, Sender]:
    return {channel: sender for effect in EFFECTS for channel, sender in effect.senders(app).items()}


def dead_tasks(app: web.Application) -> list[DeadRowTasks]:
    return [app[effect.dead] for effect in EFFECTS]
