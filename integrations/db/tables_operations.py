"""The tables of running orderbot: staff users, the audit trail, exceptions, leases, alert marks and the
channel consistency scores."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Index, String, Table, Text, UniqueConstraint

from integrations.db.schema import TS, Id, metadata

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
