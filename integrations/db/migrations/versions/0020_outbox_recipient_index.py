"""outbox (recipient, channel, delivered_at): the rate limiter counts a person's recent sends and reads their
pending rows before every delivery; without this index each of those reads scanned the whole outbox, so a
delivery cost more the longer the outbox grew

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_recipient", "outbox", ["recipient", "channel", "delivered_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_recipient", table_name="outbox")
