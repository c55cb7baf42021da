"""The tables of what orderbot keeps about outside systems: K3 bills, courier reports, relabel waybills,
channels' catch-up bookmarks and the platforms' shared access tokens."""

from __future__ import annotations

from sqlalchemy import Column, String, Table, Text, UniqueConstraint

from integrations.db.schema import TS, Id, metadata

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

channel_cursors = Table(
    "channel_cursors",
    metadata,
    Column("channel", String(32), primary_key=True),  # douyin, k3, ... : whose catch-up pull this is
    Column("position", String(64), nullable=False),  # the channel's own bookmark (an update time, a page key)
    Column("updated_at", TS, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("token", Text, nullable=False),
    Column("expires_at", TS, nullable=False),
)
