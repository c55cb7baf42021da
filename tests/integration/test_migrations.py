"""The Alembic migrations build exactly the schema the code uses, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from integrations.db import migrate
from integrations.db.tables import metadata


async def test_migrated_schema_matches_the_tables(db_url: str) -> None:
    engine = create_async_engine(db_url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
    await engine.dispose()
    assert diff == []


def test_a_migrated_sqlite_file_is_already_in_wal_mode(tmp_path: Path) -> None:
    """So no engine has to switch it at connect, which two engines opening it at once could not both do."""
    path = tmp_path / "fresh.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
