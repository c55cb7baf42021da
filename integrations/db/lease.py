"""A lease row in the database: whoever holds `name` until `expires_at` is the one replica that runs jobs.

Not a session-scoped advisory lock: a lease survives connection pooling, works on SQLite too, and a
replica that dies simply stops renewing, so another takes over once the row expires.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.engine import Database


class Lease:
    def __init__(
        self, db: Database, name: str, holder: str, *, ttl: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db, self.name, self.holder, self.ttl, self.clock = db, name, holder, ttl, clock
        dialect = sqlite if db.is_sqlite else postgresql
        self._insert = dialect.insert(t.leases)

    async def acquire(self) -> bool:
        """Take the lease, keep it, or steal it if expired: one INSERT .. ON CONFLICT DO UPDATE .. WHERE.

        A concurrent twin waits on the row (PostgreSQL) or the write lock (SQLite) and then sees the new
        holder, so exactly one of them gets a row back.
        """
        now = self.clock()
        stmt = self._insert.values(name=self.name, holder=self.holder, expires_at=now + self.ttl)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.leases.c.name],
            set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
            where=(t.leases.c.holder == self.holder) | (t.leases.c.expires_at < now),
        ).returning(t.leases.c.holder)
        async with self.db.engine.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def renew(self) -> bool:
        """Extend a lease we hold. False if someone else has it (we must stop running jobs)."""
        now = self.clock()
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                update(t.leases)
                .where(and_(t.leases.c.name == self.name, t.leases.c.holder == self.holder))
                .values(expires_at=now + self.ttl)
            )
            return result.rowcount == 1

    async def release(self) -> None:
        """Give the lease up at shutdown, so another replica need not wait for it to expire."""
        async with self.db.engine.begin() as conn:
            await conn.execute(
                delete(t.leases).where(and_(t.leases.c.name == self.name, t.leases.c.holder == self.holder))
            )

    async def current(self) -> tuple[str, datetime] | None:
        """(holder, expires_at) of the row, for `jobs list` and tests."""
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.leases.c.holder, t.leases.c.expires_at).where(t.leases.c.name == self.name)
                )
            ).first()
        if row is None:
            return None
        return row[0], row[1]
