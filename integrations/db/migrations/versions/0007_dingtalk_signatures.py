"""dingtalk signatures: each signed DingTalk callback is accepted with one body only

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dingtalk_signatures",
        sa.Column("route", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("route", "signature", name=op.f("pk_dingtalk_signatures")),
    )
    op.create_index(op.f("ix_dingtalk_signatures_seen_at"), "dingtalk_signatures", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_dingtalk_signatures_seen_at"), table_name="dingtalk_signatures")
    op.drop_table("dingtalk_signatures")
