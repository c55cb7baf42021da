"""The schema, as SQLAlchemy Core tables. Alembic migrations under migrations/ create exactly this.

Every table is on the one `metadata` (integrations/db/schema.py) and defined in a module by what it serves:
tables_orders (orders, customers, after-sales, stock), tables_messaging (outbox, inbox, events),
tables_integrations (K3, couriers, waybills, channel bookmarks, tokens) and tables_operations (users, audit,
exceptions, leases, alerts, consistency). Importing this module registers them all; code names them here,
as `from integrations.db import tables as t` then `t.orders`.
"""

from __future__ import annotations

from integrations.db.schema import TS, Id, metadata
from integrations.db.tables_integrations import (
    api_tokens,
    channel_cursors,
    courier_tracks,
    k3_bills,
    waybill_drafts,
)
from integrations.db.tables_messaging import (
    dingtalk_signatures,
    event_cursors,
    events,
    inbound_messages,
    inbox_holders,
    outbox,
)
from integrations.db.tables_operations import (
    alert_marks,
    audit_log,
    consistency_scores,
    exceptions,
    leases,
    users,
)
from integrations.db.tables_orders import (
    aftersales,
    customer_keys,
    customer_numbers,
    customers,
    demand_signals,
    inventory,
    orders,
    receivables,
    sku_freezes,
    skus,
    stock_evaluations,
    stores,
)

__all__ = [
    "TS",
    "Id",
    "aftersales",
    "alert_marks",
    "api_tokens",
    "audit_log",
    "channel_cursors",
    "consistency_scores",
    "courier_tracks",
    "customer_keys",
    "customer_numbers",
    "customers",
    "demand_signals",
    "dingtalk_signatures",
    "event_cursors",
    "events",
    "exceptions",
    "inbound_messages",
    "inbox_holders",
    "inventory",
    "k3_bills",
    "leases",
    "metadata",
    "orders",
    "outbox",
    "receivables",
    "sku_freezes",
    "skus",
    "stock_evaluations",
    "stores",
    "users",
    "waybill_drafts",
]
