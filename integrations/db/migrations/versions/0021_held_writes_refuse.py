"""orderbot_refuse(n): the function a held-back statement (integrations/db/held_writes.py) calls to abort itself
when its n-th UPDATE touched no row — a version conflict, stock that is not there — so that nothing of it is
written; raised with SQLSTATE OB409. PostgreSQL only: SQLite holds no write back

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION orderbot_refuse(guard integer) RETURNS integer LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'held update % touched no row', guard USING ERRCODE = 'OB409'; END $$"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS orderbot_refuse(integer)")
