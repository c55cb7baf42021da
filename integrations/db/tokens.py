"""Access tokens kept in the `api_tokens` table, so every replica shares one WeCom (or DingTalk) token.

WeCom invalidates the previous access token when a new one is fetched too often and limits gettoken
calls, so replicas must not each fetch their own. This is the shared store of integrations.tokens;
each process's TokenKeeper keeps the token in memory and reads this table only when it has none fresh,
or when the platform refused the one it had (another replica may already have put a fresh one here).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from integrations.db import tables as t
from integrations.db.engine import Database


class DbTokenCache:
    """The `TokenCache` protocol of integrations.tokens, on the database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> tuple[str, float] | None:
        stmt = select(t.api_tokens.c.token, t.api_tokens.c.expires_at).where(t.api_tokens.c.key == key)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else (row.token, row.expires_at.timestamp())

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
