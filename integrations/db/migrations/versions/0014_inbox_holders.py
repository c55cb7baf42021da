"""inbox_holders: one heartbeat per process instead of a lease per inbound message (renewing 18,000 queued rows'
leases in one statement locked them all and held up their processing); claimed_until goes

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_holders",
        sa.Column("holder", sa.String(64), primary_key=True),
        sa.Column("alive_until", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("claimed_until")


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    op.drop_table("inbox_holders")
