"""Column types that make SQLite and PostgreSQL hand back the same Python values."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A `DateTime(timezone=True)` that stores UTC and always reads back aware UTC, also on SQLite.

    SQLite keeps no offset: it stores the wall-clock digits and returns naive datetimes, so a value is
    turned to UTC before it is written (a naive one is taken to be UTC already) and marked UTC when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _utc(value)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is UTC:  # asyncpg's answers and the domain's clock: nothing to do
        return at
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
