"""The tables of messages in and out: the outbox, the inbox and its holders, the DingTalk signatures seen,
and the domain events with their subscribers' cursors."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, Integer, String, Table, Text, false

from integrations.db.schema import TS, Id, metadata

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

dingtalk_signatures = Table(
    "dingtalk_signatures",
    metadata,
    Column("route", String(16), primary_key=True),  # robot | card (integrations/dingtalk/replay.py)
    Column("signature", String(64), primary_key=True),  # a verified `sign` header: base64 of an HMAC-SHA256
    Column("body_sha256", String(64), nullable=False),  # the one body accepted with it
    Column("seen_at", TS, nullable=False, index=True),
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
