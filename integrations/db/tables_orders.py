"""The tables of the business itself: orders, customers, after-sales, receivables, stores and stock
(inventory and the dynamic safety stock's SKUs, demand signals, evaluations and freezes)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from integrations.db.schema import TS, Id, metadata

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_no", String(32), unique=True),
    Column("channel", String(32), nullable=False),
    Column("external_id", String(64), nullable=False),
    Column("parent_no", String(32), index=True),
    Column("store", String(32), index=True),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("customer_name", String(64), nullable=False, default=""),
    Column("customer_phone", String(32), nullable=False, default=""),
    Column("address", Text, nullable=False),
    Column("lines", JSON, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("state", String(32), nullable=False, index=True),
    Column("waybill", String(64), index=True),
    Column("address_change_pending", Boolean, nullable=False, default=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("shipped_at", TS),
    Column("version", Integer, nullable=False, default=1),
    UniqueConstraint("channel", "external_id", name="uq_orders_channel_external_id"),
)

Index("ix_orders_created_at", orders.c.created_at)  # the safety-stock job reads 7 days of sales

customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("name", String(64), nullable=False, default=""),
    Column("phone", String(32), nullable=False, default=""),
    Column("settlement_hold", Boolean, nullable=False, default=False),
    Column("hold_reason", Text, nullable=False, default=""),
    Column("updated_at", TS, nullable=False),
    Column("sms_opt_out", Boolean, nullable=False, default=False, server_default=false()),  # no texts, ever
    # named: an id a system of record gave (REST, import); keys: created by orderbot from a channel's keys
    Column("origin", String(8), nullable=False, server_default="named"),
    Column("merged_into", String(64), nullable=True),  # a keys customer merged into another: where it went
)

customer_keys = Table(
    "customer_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # phone | phone_index | openid | unionid | member_card | ...
    Column("value", String(128), nullable=False),  # a phone in E.164; Douyin's index as given (never decrypted)
    Column("customer_id", String(64), nullable=False, index=True),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("kind", "value"),  # a key names one customer
)

customer_numbers = Table(  # C00000001...: customers orderbot creates are numbered from this table's ids
    "customer_numbers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("created_at", TS, nullable=False),
)

aftersales = Table(
    "aftersales",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("aftersale_no", String(32), unique=True),
    Column("order_no", String(32), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("category", String(32), nullable=False, default="其他"),
    Column("amount_fen", BigInteger, nullable=False),
    Column("state", String(32), nullable=False, index=True),
    Column("approvals", JSON, nullable=False),
    Column("rejected_by", String(64)),
    Column("decision_note", Text, nullable=False, default=""),
    Column("requested_by", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("version", Integer, nullable=False, default=1),
)

receivables = Table(
    "receivables",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_no", String(32), nullable=False, unique=True),
    Column("customer_id", String(64), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("created_at", TS, nullable=False),
)

stores = Table(  # the store register: the sender on each store's waybills
    "stores",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("address", Text, nullable=False),
    Column("phone", String(32), nullable=False, default=""),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

inventory = Table(
    "inventory",
    metadata,
    Column("store", String(32), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("on_hand", Integer, nullable=False, default=0),
    Column("reserved", Integer, nullable=False, default=0),
    Column("version", Integer, nullable=False, default=1),
    Column("updated_at", TS, nullable=False),
    CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
)

# Dynamic safety stock (动态安全库存). Sales history is not copied here: the hourly job reads the orders
# table (top-level orders only, lines JSON, channel, created_at) for the last 7 days and aggregates in Python.
skus = Table(
    "skus",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("name", String(128), nullable=False, default=""),
    Column("replenish_threshold", Integer, nullable=False),  # units per 48 h that call for replenishment
    Column("lead_time_days", Integer, nullable=False, default=0),
    Column("updated_at", TS, nullable=False),
)

demand_signals = Table(
    "demand_signals",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # cart_add | live_viewers
    Column("value", Integer, nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_demand_signals_kind_at", "kind", "at"),
)

stock_evaluations = Table(
    "stock_evaluations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku", String(64), nullable=False),
    Column("evaluated_at", TS, nullable=False),
    Column("forecast", Float, nullable=False),  # units expected in the next 48 h
    Column("threshold", Integer, nullable=False),
    Column("over", Boolean, nullable=False),
    Column("class", String(1), nullable=False),  # A | B | C
    Column("available", Integer, nullable=False),  # on hand − reserved, all stores
    Column("suggested_qty", Integer),  # set when this evaluation pushed a replenishment suggestion
    Index("ix_stock_evaluations_sku_evaluated_at", "sku", "evaluated_at"),
)

sku_freezes = Table(
    "sku_freezes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku", String(64), nullable=False, index=True),
    Column("channel", String(32), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("frozen_at", TS, nullable=False),
    Column("lifted_at", TS),  # null while the freeze holds
    Column("lifted_by", String(64)),
)
