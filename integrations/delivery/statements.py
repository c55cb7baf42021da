"""A connection for one statement that stands on its own (a claim, an outcome, a read).

On PostgreSQL it runs in autocommit: one round trip instead of BEGIN, the statement, COMMIT. A single statement
is atomic by itself, so nothing is lost: its WHERE clause is what guards it (a claim's SKIP LOCKED, an outcome's
"still pending under this claim"). SQLite keeps its transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db.engine import Database


@contextlib.asynccontextmanager
async def one_statement(db: Database) -> AsyncIterator[AsyncConnection]:
    if db.is_sqlite:
        async with db.engine.begin() as conn:
            yield conn
        return
    async with db.engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")
