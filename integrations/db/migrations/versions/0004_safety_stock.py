"""dynamic safety stock: registered SKUs, demand signals, hourly evaluations, channel freezes; orders by time

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_index("ix_orders_created_at", "orders", ["created_at"], unique=False)
    op.create_table(
        "skus",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("replenish_threshold", sa.Integer(), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_skus")),
    )
    op.create_table(
        "demand_signals",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demand_signals")),
    )
    op.create_index("ix_demand_signals_kind_at", "demand_signals", ["kind", "at"], unique=False)
    op.create_table(
        "stock_evaluations",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("evaluated_at", TS, nullable=False),
        sa.Column("forecast", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("over", sa.Boolean(), nullable=False),
        sa.Column("class", sa.String(length=1), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("suggested_qty", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_evaluations")),
    )
    op.create_index(
        "ix_stock_evaluations_sku_evaluated_at", "stock_evaluations", ["sku", "evaluated_at"], unique=False
    )
    op.create_table(
        "sku_freezes",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("frozen_at", TS, nullable=False),
        sa.Column("lifted_at", TS, nullable=True),
        sa.Column("lifted_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sku_freezes")),
    )
    op.create_index(op.f("ix_sku_freezes_sku"), "sku_freezes", ["sku"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sku_freezes_sku"), table_name="sku_freezes")
    op.drop_table("sku_freezes")
    op.drop_index("ix_stock_evaluations_sku_evaluated_at", table_name="stock_evaluations")
    op.drop_table("stock_evaluations")
    op.drop_index("ix_demand_signals_kind_at", table_name="demand_signals")
    op.drop_table("demand_signals")
    op.drop_table("skus")
    op.drop_index("ix_orders_created_at", table_name="orders")
