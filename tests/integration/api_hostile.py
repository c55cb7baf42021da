"""What the hostile-input tests of the REST API share: the tables a refusal must leave alone, a statement counter,
and a request sent as raw bytes (for headers no HTTP client would send)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, func, select

from integrations.db import tables as t
from integrations.db.engine import Database

# Every table a request through the API can write; a refused request leaves each as it was (the audit trail may
# only gain "refused" rows).
STORED = (t.orders, t.customers, t.inventory, t.aftersales, t.outbox, t.exceptions, t.receivables, t.skus,
          t.demand_signals, t.sku_freezes, t.waybill_drafts, t.users)


_COUNTS = select(
    *(select(func.count()).select_from(tbl).scalar_subquery().label(tbl.name) for tbl in STORED),
    select(func.count()).select_from(t.audit_log).where(t.audit_log.c.outcome != "refused").scalar_subquery()
    .label("audit_ok"),
)


async def counts(db: Database) -> dict[str, int]:
    """Rows in each table (one round trip), and audit rows that are not refusals."""
    async with db.engine.connect() as conn:
        return dict((await conn.execute(_COUNTS)).one()._mapping)


_BACKGROUND = ("inbound_messages", "FROM outbox")


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement the app runs inside the block, to show that a request never reached the database.
    The background workers' reads are left out (the inbox sweep, the outbox dispatcher and its dead-row check run
    on their own clock); a refused request's writes are caught by the row counts the tests compare as well."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not any(mark in statement for mark in _BACKGROUND):
            seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def raw_request(host: str, port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send `head` (request line and headers, CRLF-separated, no final blank line) and `body` as they are."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]
