"""Compose the bus from the handler routers: the one place that lists them."""

from __future__ import annotations

from collections.abc import Callable

from handlers import (
    address_check,
    aftersales,
    alerts,
    books,
    channel_orders,
    channel_shipments,
    chat_aftersales,
    chat_ask,
    chat_desk,
    chat_orders,
    chat_router,
    consistency,
    courier_tracks,
    customer_login,
    customer_sms,
    douyin_orders,
    escalation,
    imports,
    inventory,
    logistics,
    orders,
    safety_stock,
    skus,
    stores,
    waybills,
)
from handlers.bus import Deps, MessageBus
from integrations.db.engine import Database
from integrations.db.uow import DUPLICATE_ERRORS, UnitOfWork

ROUTERS = (
    orders.router, inventory.router, aftersales.router, alerts.router, chat_router.router, chat_orders.router,
    chat_desk.router, chat_aftersales.router, chat_ask.router, logistics.router, courier_tracks.router,
    address_check.router, skus.router, escalation.router, safety_stock.router, imports.router, douyin_orders.router,
    channel_orders.router, consistency.router, customer_login.router,
    customer_sms.router, channel_shipments.router, books.router, stores.router, waybills.router,
)


def build_bus(db: Database, deps: Deps) -> MessageBus:
    return compose(lambda: UnitOfWork(db), deps)


def compose(uow_factory: Callable[[], UnitOfWork], deps: Deps) -> MessageBus:
    """The bus over any unit of work: the database's, or tests/unit/fakes.py's in-memory one."""
    bus = MessageBus(uow_factory, deps, *ROUTERS, duplicate_errors=DUPLICATE_ERRORS)
    deps.dispatch = bus.handle  # a scheduled job's steps each run as a command of their own
    return bus
