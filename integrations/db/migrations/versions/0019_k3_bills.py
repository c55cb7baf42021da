"""k3_bills: the documents booked in K3 Cloud for an order (its receivable, its refunds' red receivables), with
K3's bill number and document status, shown by 查询 and GET /api/v1/orders/{ref}

Revision ID: 0019
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "k3_bills",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("order_no", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("bill_no", sa.String(64), nullable=False),
        sa.Column("status", sa.String(1), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "ref", name="uq_k3_bills_kind_ref"),
    )
    op.create_index("ix_k3_bills_order_no", "k3_bills", ["order_no"])


def downgrade() -> None:
    op.drop_index("ix_k3_bills_order_no", table_name="k3_bills")
    op.drop_table("k3_bills")
