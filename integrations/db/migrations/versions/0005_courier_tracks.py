"""courier_tracks: the latest report per waybill, as Kuaidi100's subscription pushes leave it

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "courier_tracks",
        sa.Column("waybill", sa.String(length=64), nullable=False),
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_context", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("waybill", name=op.f("pk_courier_tracks")),
    )


def downgrade() -> None:
    op.drop_table("courier_tracks")
