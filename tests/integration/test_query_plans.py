"""The hot statements keep to their indexes on a grown table, whatever its statistics say (PostgreSQL plans).

A statement run on asyncpg is prepared once per connection; after five runs PostgreSQL may keep a generic plan,
chosen from the table's statistics as they were. A table that grew since its last analyze (a new inbox, a burst
before autovacuum) then gets a plan for a small table — a sequential scan — on every later run. These tests grow
a table without analysing it and read the plans the statements get.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.engine import Database, autocommit_driver
from integrations.db.inbox_writer import _RECORD
from integrations.delivery.limiter import RecipientLimiter
from integrations.delivery.rows import OutboxRow

GROWN = 3000  # rows no analyze has seen


@pytest.fixture(autouse=True)
def _postgres_only(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's plans")


async def test_the_inbox_write_probes_the_key_for_copies_on_an_inbox_never_analysed(db: Database) -> None:
    """Every acknowledgement batch runs this INSERT. As an anti join its generic plan on a grown, unanalysed
    inbox scans the whole inbox per batch (the acknowledgement then costs more the longer the inbox is)."""
    async with db.engine.connect() as conn:
        driver = await autocommit_driver(conn)
        await driver.execute(
            "INSERT INTO inbound_messages (platform, message_id, received_at, payload) "
            f"SELECT 'wecom', 'old' || g, now(), '{{}}' FROM generate_series(1, {GROWN}) g")
        await driver.execute(f"PREPARE record_batch (text[], text[], timestamptz[], text[], text) AS {_RECORD}")
        try:
            await driver.execute("SET plan_cache_mode = force_generic_plan")
            plan = "\n".join(r[0] for r in await driver.fetch(
                "EXPLAIN EXECUTE record_batch ('{wecom,wecom}', '{old1,new1}', ARRAY[now(), now()], ARRAY['{}', '{}'], 'h')"))
        finally:
            await driver.execute("RESET plan_cache_mode")
            await driver.execute("DEALLOCATE record_batch")
    assert "Seq Scan on inbound_messages" not in plan, plan
    assert "pk_inbound_messages" in plan, plan


async def test_admitting_a_row_reads_the_recipients_rows_by_index_not_the_whole_outbox(db: Database) -> None:
    """The rate limiter counts the recipient's recent sends and pending rows before every delivery. Without an
    index on the recipient each of those reads was a sequential scan of the whole outbox."""
    now = utcnow()
    async with db.engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO outbox (created_at, channel, kind, recipient, payload, status, attempts, next_attempt_at, "
            "delivered_at, last_error, urgent) "
            f"SELECT now(), 'chat', 'text', 'u' || (g % 300), '{{}}', 'delivered', 1, now(), now(), '', false "
            f"FROM generate_series(1, {GROWN}) g"))
        found = (await conn.execute(
            t.outbox.insert().values(created_at=now, channel="chat", kind="text", recipient="someone",
                                     payload={"text": "hi"}, status="pending", attempts=0, next_attempt_at=now,
                                     claimed_until=now + timedelta(seconds=60), last_error="", urgent=False)
            .returning(*t.outbox.c)
        )).one()
    row = OutboxRow.from_mapping(found._mapping)
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "outbox" in statement:
            statements.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        admission = await RecipientLimiter(db, clock=lambda: now).admit(row)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert admission.rows == (row,)
    assert statements
    async with db.engine.connect() as conn:
        driver = await autocommit_driver(conn)
        for statement, parameters in statements:
            plan = "\n".join(r[0] for r in await driver.fetch(f"EXPLAIN {statement}", *parameters))
            assert "Seq Scan on outbox" not in plan, f"{statement}\n{plan}"
