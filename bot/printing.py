"""Labels at the packing bench wired into the app: the outbox sender for channel "print" (from PRINTING__PRINTERS),
the Cainiao print component's WebSocket client, the cards to the bench when a label cannot print, and, at start,
the labels that waited for a store's printer to be set up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bot.keys import DB, SETTINGS
from domain.clock import utcnow
from integrations.delivery.dispatcher import Sender
from integrations.printing.cainiao import CainiaoPrintComponent
from integrations.printing.dead import PrintTrouble
from integrations.printing.sender import CHANNEL, PrintSender
from integrations.printing.waiting import revive_unconfigured

PRINT_TROUBLE = web.AppKey("print_trouble", PrintTrouble)
PRINT_SENDER = web.AppKey("print_sender", PrintSender)


async def printing_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg, db = app[SETTINGS].printing, app[DB]
    trouble = app[PRINT_TROUBLE] = PrintTrouble(db)
    await revive_unconfigured(db, cfg.printers, utcnow(), cfg.drain_max_age_hours)
    async with aiohttp.ClientSession() as http:
        cainiao = CainiaoPrintComponent(http, connect_s=cfg.connect_timeout_s, send_s=cfg.send_timeout_s,
                                        notify_s=cfg.notify_timeout_s)
        app[PRINT_SENDER] = PrintSender(cfg.printers, cainiao=cainiao, connect_s=cfg.connect_timeout_s,
                                        send_s=cfg.send_timeout_s, window_s=cfg.retry_window_s,
                                        no_printer=trouble.no_printer)
        yield


def print_senders(app: web.Application) -> dict[str, Sender]:
    return {CHANNEL: app[PRINT_SENDER]}
