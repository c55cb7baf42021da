"""Compose the bus from the handler routers: the one place that lists them."""

from __future__ import annotations

from handlers import (  # noqa: F401 (chat_* modules register their verbs on import)
    aftersales,
    alerts,
    chat_aftersales,
    chat_commands,
    chat_warehouse,
    inventory,
    logistics,
    orders,
)
from handlers.bus import Deps, MessageBus
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork


def build_bus(db: Database, deps: Deps) -> MessageBus:
    return MessageBus(
        lambda: UnitOfWork(db), deps, orders.router, inventory.router, aftersales.router, alerts.router,
        chat_commands.router, logistics.router, chat_warehouse.router,
    )
