"""customer_keys: what channels call a customer (phone, OpenID, member card, ...) → our customer; customers
created from keys are numbered from customer_numbers and may be merged into another (merged_into)

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "customer_keys",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "value", name="uq_customer_keys_kind"),
    )
    op.create_index("ix_customer_keys_customer_id", "customer_keys", ["customer_id"])
    op.create_table(
        "customer_numbers",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("origin", sa.String(8), nullable=False, server_default="named"))
        batch.add_column(sa.Column("merged_into", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("merged_into")
        batch.drop_column("origin")
    op.drop_table("customer_numbers")
    op.drop_index("ix_customer_keys_customer_id", table_name="customer_keys")
    op.drop_table("customer_keys")
