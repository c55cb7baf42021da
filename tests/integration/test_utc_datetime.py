"""Every datetime column reads back aware UTC, the same instant that was written, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import func, insert, select

from integrations.db import tables as t
from integrations.db.column_types import UtcDateTime
from integrations.db.engine import Database
from integrations.db.tokens import DbTokenCache

NOON_UTC = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
SHANGHAI = timezone(timedelta(hours=8))


def test_every_datetime_column_is_utc_datetime() -> None:
    plain = [f"{table.name}.{c.name}" for table in t.metadata.sorted_tables for c in table.columns
             if c.type.python_type is datetime and not isinstance(c.type, UtcDateTime)]
    assert plain == []


async def test_written_times_read_back_as_aware_utc(db: Database) -> None:
    written = {
        "utc": NOON_UTC,
        "shanghai": NOON_UTC.astimezone(SHANGHAI),  # 20:00 +08:00, the same instant
        "naive": NOON_UTC.replace(tzinfo=None),  # taken as UTC
    }
    async with db.engine.begin() as conn:
        await conn.execute(insert(t.alert_marks), [{"key": k, "created_at": at} for k, at in written.items()])
        read = dict((await conn.execute(select(t.alert_marks.c.key, t.alert_marks.c.created_at))).all())
        latest = (await conn.execute(select(func.max(t.alert_marks.c.created_at)))).scalar_one()
    assert read == {k: NOON_UTC for k in written}
    assert all(at.tzinfo is UTC for at in [*read.values(), latest])
    assert latest == NOON_UTC


async def test_comparisons_in_sql_see_the_instant_not_the_wall_clock(db: Database) -> None:
    """SQLite compares the stored text: a +08:00 time stored as its wall clock would sort 8 hours late."""
    async with db.engine.begin() as conn:
        await conn.execute(insert(t.alert_marks), [
            {"key": "early", "created_at": NOON_UTC.astimezone(SHANGHAI)},
            {"key": "late", "created_at": NOON_UTC + timedelta(hours=1)},
        ])
        after_half_past = select(t.alert_marks.c.key).where(
            t.alert_marks.c.created_at > (NOON_UTC + timedelta(minutes=30)).astimezone(SHANGHAI)
        )
        assert (await conn.execute(after_half_past)).scalars().all() == ["late"]


async def test_a_stored_token_keeps_its_expiry(db: Database) -> None:
    cache = DbTokenCache(db)
    await cache.put("corp:1", "tok", NOON_UTC.timestamp())
    assert await cache.get("corp:1") == ("tok", NOON_UTC.timestamp())
