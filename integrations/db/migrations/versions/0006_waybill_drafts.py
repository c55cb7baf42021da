"""waybill drafts: the new label prepared when an address changes in the warehouse

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "waybill_drafts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("order_no", sa.String(length=32), nullable=False),
        sa.Column("voided_waybill", sa.String(length=64), nullable=True),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("waybill", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waybill_drafts")),
    )
    op.create_index(op.f("ix_waybill_drafts_order_no"), "waybill_drafts", ["order_no"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_waybill_drafts_order_no"), table_name="waybill_drafts")
    op.drop_table("waybill_drafts")
