"""Access tokens kept in the `api_tokens` table, so every replica shares one WeCom token.

WeCom invalidates the previous access token when a new one is fetched too often and limits gettoken
calls, so replicas must not each keep their own copy in memory.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from integrations.db import tables as t
from integrations.db.engine import Database


class DbTokenCache:
    """The `TokenCache` protocol of integrations.wecom.client, on the database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> tuple[str, float] | None:
        stmt = select(t.api_tokens.c.token, t.api_tokens.c.expires_at).where(t.api_tokens.c.key == key)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        return row.token, _as_utc(row.expires_at).timestamp()

    async def put(self, key: str, token: str, expires_at: float) -> None:
        values = {"key": key, "token": token, "expires_at": datetime.fromtimestamp(expires_at, UTC)}
        insert = sqlite.insert if self._db.is_sqlite else postgresql.insert
        stmt = insert(t.api_tokens).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.api_tokens.c.key],
            set_={"token": stmt.excluded.token, "expires_at": stmt.excluded.expires_at},
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(stmt)


def _as_utc(at: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at
