"""The schema, as SQLAlchemy Core tables. Alembic migrations under migrations/ create exactly this."""

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
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from integrations.db.column_types import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer(), "sqlite")
TS = UtcDateTime()  # every datetime column: aware UTC in and out, on SQLite as on PostgreSQL

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

users = Table(
    "users",
    metadata,
    Column("userid", String(64), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("store", String(32), index=True),
    Column("dingtalk_id", String(64), unique=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", TS, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", TS, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("via", String(16), nullable=False),
    Column("entity", String(16), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_state", String(32)),
    Column("to_state", String(32)),
    Column("outcome", String(16), nullable=False),  # ok | refused
    Column("reason", Text, nullable=False, default=""),
    Column("detail", JSON),
    Index("ix_audit_log_entity", "entity", "entity_id"),
    Index("ix_audit_log_at", "at"),  # the health dashboard and 概况 read the trail by time range
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("created_at", TS, nullable=False),
    Column("channel", String(16), nullable=False),  # wecom | dingtalk | sms | erp
    Column("kind", String(32), nullable=False),
    Column("recipient", String(128), nullable=False, default=""),
    Column("payload", JSON, nullable=False),
    Column("dedup_key", String(128), unique=True),
    Column("status", String(16), nullable=False, default="pending"),  # pending | delivered | dead | skipped | unconfigured
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", TS, nullable=False),
    Column("claimed_until", TS),
    Column("last_error", Text, nullable=False, default=""),
    Column("delivered_at", TS),
    Column("urgent", Boolean, nullable=False, default=False, server_default=false()),  # exception push: first, never merged
    Index("ix_outbox_due", "status", "next_attempt_at"),
    Index("ix_outbox_recipient", "recipient", "channel", "delivered_at"),  # the rate limiter's reads per person; recipient first, so the dispatcher's claim by channel keeps to ix_outbox_due
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("platform", String(16), primary_key=True),
    Column("message_id", String(128), primary_key=True),
    Column("received_at", TS, nullable=False),
    Column("payload", JSON),  # the normalised InboundMessage, so an unprocessed one can be replayed
    Column("processed_at", TS),
    Column("attempts", Integer, nullable=False, server_default="0"),  # processing attempts that failed or died
    Column("parked_at", TS),  # dead: failed its last attempt, reported to the managers, never replayed
    Column("last_error", Text, nullable=False, server_default=""),
    Column("claimed_by", String(64)),  # the process that has it queued or running (bot/inbound_queue.py)
    Index("ix_inbound_messages_unprocessed", "processed_at", "received_at"),
)

inbox_holders = Table(  # each process's heartbeat: its inbox rows are free for a sweep once it lapses
    "inbox_holders",
    metadata,
    Column("holder", String(64), primary_key=True),
    Column("alive_until", TS, nullable=False),
)

exceptions = Table(
    "exceptions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("order_no", String(32), index=True),
    Column("sku", String(64)),
    Column("store", String(32)),
    Column("severity", String(16), nullable=False, default="warning"),
    Column("message", Text, nullable=False),
    Column("opened_at", TS, nullable=False),
    Column("acknowledged_by", String(64)),
    Column("acknowledged_at", TS),
    Column("resolved_by", String(64)),
    Column("resolved_at", TS),
    Column("resolution", Text, nullable=False, default=""),
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

k3_bills = Table(  # the documents booked in K3 Cloud for an order: its receivable, its refunds' red receivables
    "k3_bills",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_no", String(32), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # receivable | red_receivable
    Column("ref", String(32), nullable=False),  # what it was booked for: the order or the after-sale number
    Column("bill_no", String(64), nullable=False),  # K3's FBillNo
    Column("status", String(1), nullable=False),  # K3's FDocumentStatus after us: A saved, B submitted, C audited
    Column("booked_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("kind", "ref", name="uq_k3_bills_kind_ref"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("token", Text, nullable=False),
    Column("expires_at", TS, nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", TS, nullable=False),
)

alert_marks = Table(
    "alert_marks",
    metadata,
    Column("key", String(160), primary_key=True),  # e.g. stuck:OB00000012:picking, escalated:42
    Column("created_at", TS, nullable=False),
)

dingtalk_signatures = Table(
    "dingtalk_signatures",
    metadata,
    Column("route", String(16), primary_key=True),  # robot | card (integrations/dingtalk/replay.py)
    Column("signature", String(64), primary_key=True),  # a verified `sign` header: base64 of an HMAC-SHA256
    Column("body_sha256", String(64), nullable=False),  # the one body accepted with it
    Column("seen_at", TS, nullable=False, index=True),
)

courier_tracks = Table(
    "courier_tracks",
    metadata,
    Column("waybill", String(64), primary_key=True),  # the latest courier report per waybill (Kuaidi100 push)
    Column("carrier", String(32), nullable=False, default=""),
    Column("status", String(16), nullable=False),  # domain.arbitration: picked_up | in_transit | signed | problem
    Column("signed_at", TS),
    Column("last_at", TS),
    Column("last_context", Text, nullable=False, default=""),
    Column("updated_at", TS, nullable=False),
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


waybill_drafts = Table(
    "waybill_drafts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_no", String(32), nullable=False, index=True),
    Column("voided_waybill", String(64)),  # the label that must not leave the warehouse
    Column("address", Text, nullable=False),  # where the new label sends the parcel
    Column("status", String(16), nullable=False),  # draft | used
    Column("waybill", String(64)),  # the new waybill, filled when the warehouse confirms the relabel
    Column("created_at", TS, nullable=False),
    Column("used_at", TS),
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


events = Table(
    "events",
    metadata,
    # every domain event, stored in the transaction that raised it (the order event bus, integrations/events)
    Column("id", Id, primary_key=True, autoincrement=True),
    # its place in the published stream, given after commit in commit order (integrations/db/events.py): the
    # event id subscribers see and cursors count
    Column("seq", BigInteger, unique=True),
    Column("type", String(64), nullable=False),  # its wire name, e.g. order.state_changed
    Column("order_no", String(32)),
    Column("at", TS, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("via", String(16), nullable=False),
    Column("data", JSON, nullable=False),
)

event_cursors = Table(
    "event_cursors",
    metadata,
    Column("subscriber", String(64), primary_key=True),  # a webhook's name, or jetstream:<stream>
    Column("position", BigInteger, nullable=False),  # the last seq delivered
    Column("holder", String(128)),  # the replica delivering to this subscriber, until held_until
    Column("held_until", TS),
    Column("delivered_at", TS),
    Column("failing_since", TS),  # null while deliveries succeed
    Column("last_error", Text, nullable=False, default=""),
)


channel_cursors = Table(
    "channel_cursors",
    metadata,
    Column("channel", String(32), primary_key=True),  # douyin, k3, ... : whose catch-up pull this is
    Column("position", String(64), nullable=False),  # the channel's own bookmark (an update time, a page key)
    Column("updated_at", TS, nullable=False),
)

consistency_scores = Table(
    "consistency_scores",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # hour | day (domain/consistency.py)
    Column("window_start", TS, nullable=False),
    Column("window_end", TS, nullable=False),
    Column("score", Float, nullable=False),  # min ÷ max × 100, the lowest channel's
    Column("tallies", JSON, nullable=False),  # [{channel, source, orderbot, missing: [external ids, capped]}]
    Column("low_since", TS),  # start of the first window of the current drop below the threshold; null: not low
    Column("computed_at", TS, nullable=False),
    UniqueConstraint("kind", "window_start", name="uq_consistency_scores_kind"),
)
