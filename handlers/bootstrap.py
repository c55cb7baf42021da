"""Compose the bus from the handler routers: the one place that lists them."""

from __future__ import annotations

from handlers import (
    address_check,
    aftersales,
    alerts,
    chat_aftersales,
    chat_desk,
    chat_orders,
    chat_router,
    courier_tracks,
    inventory,
    logistics,
    orders,
    skus,
)
from handlers.bus import Deps, MessageBus
from integrations.db.engine import Database
from integrations.db.uow import DUPLICATE_ERRORS, UnitOfWork


def build_bus(db: Database, deps: Deps) -> MessageBus:
    return MessageBus(
        lambda: UnitOfWork(db), deps, orders.router, inventory.router, aftersales.router, alerts.router,
        chat_router.router, chat_orders.router, chat_desk.router, chat_aftersales.router, logistics.router,
        courier_tracks.router, address_check.router, skus.router,
        duplicate_errors=DUPLICATE_ERRORS,
    )
