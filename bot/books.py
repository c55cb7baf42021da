"""The books in K3 Cloud wired into the app: the K3 client for the books when K3 and its ORG_NUMBER are set, the
outbox sender for channel "k3" either way (without settings rows are set aside as unconfigured and counted on
/metrics, never left pending), and finance's task when a document could not be booked."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
from aiohttp import web

from bot.channels import k3_config
from bot.keys import DB, SETTINGS
from config.settings import K3Settings
from domain.clock import utcnow
from integrations.channels.k3.books import BooksConfig, K3Books
from integrations.channels.k3.books_dead import K3DeadRows
from integrations.channels.k3.books_outbox import (
    CHANNEL,
    K3BooksSender,
    UnconfiguredBooks,
    revive_unconfigured,
)
from integrations.channels.k3.client import K3Client
from integrations.delivery.dispatcher import Sender

log = logging.getLogger(__name__)
K3_BOOKS = web.AppKey("k3_books", K3Books)
K3_DEAD = web.AppKey("k3_dead", K3DeadRows)


def books_config(cfg: K3Settings) -> BooksConfig:
    return BooksConfig(cfg.org_number, bill_type=cfg.bill_type, currency=cfg.currency, tax_rate=cfg.tax_rate,
                       due_days=cfg.due_days, submit=cfg.submit or cfg.audit, audit=cfg.audit,
                       default_customer=cfg.default_customer, refund_material=cfg.refund_material)


async def books_ctx(app: web.Application) -> AsyncIterator[None]:
    """The books' own K3 client (its own login and connection pool); rows set aside while K3 was not configured
    are due again now."""
    cfg, db = app[SETTINGS].k3, app[DB]
    app[K3_DEAD] = K3DeadRows(db)
    if not cfg.books_configured:
        log.warning("k3 books are not configured (K3__SERVER_URL, ACCT_ID, APP_ID, APP_SECRET, ORG_NUMBER): receivables "
                    "are set aside as unconfigured, see orderbot_outbox_rows{channel=\"k3\"} on /metrics")
        yield
        return
    await revive_unconfigured(db, utcnow())
    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.books_timeout_s)) as http:
        app[K3_BOOKS] = K3Books(K3Client(http, k3_config(cfg)), books_config(cfg))
        yield


def books_senders(app: web.Application) -> dict[str, Sender]:
    books = app.get(K3_BOOKS)
    if books is None:
        return {CHANNEL: UnconfiguredBooks()}
    return {CHANNEL: K3BooksSender(books, app[DB])}
