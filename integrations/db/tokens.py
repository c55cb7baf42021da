"""Access tokens kept in the `api_tokens` table, so every replica shares one WeCom token.

WeCom invalidates the previous access token when a new one is fetched too often and limits gettoken
calls, so replicas must not each fetch their own. Each process keeps the last token it read or stored in
memory until `margin_s` before it expires, so a send does not read the table; when WeCom refuses a token
(40014/42001), the client calls `forget`, and the next `get` reads the table, where another replica may
already have put a fresh one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from integrations.db import tables as t
from integrations.db.engine import Database

MEMORY_MARGIN_S = 300.0  # = integrations.wecom.client.TOKEN_REFRESH_MARGIN_S: served from memory until then


class DbTokenCache:
    """The `TokenCache` protocol of integrations.wecom.client, on the database."""

    def __init__(
        self, db: Database, *, margin_s: float = MEMORY_MARGIN_S, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._margin_s = margin_s
        self._clock = clock
        self._memory: dict[str, tuple[str, float]] = {}

    async def get(self, key: str) -> tuple[str, float] | None:
        remembered = self._memory.get(key)
        if remembered is not None and remembered[1] - self._clock() > self._margin_s:
            return remembered
        stmt = select(t.api_tokens.c.token, t.api_tokens.c.expires_at).where(t.api_tokens.c.key == key)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            self._memory.pop(key, None)
            return None
        found = row.token, _as_utc(row.expires_at).timestamp()
        self._memory[key] = found
        return found

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
        self._memory[key] = (token, expires_at)

    def forget(self, key: str, token: str) -> None:
        """WeCom refused `token`: the next `get` reads the table instead of memory."""
        if key in self._memory and self._memory[key][0] == token:
            del self._memory[key]


def _as_utc(at: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at
