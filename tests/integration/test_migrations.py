"""The Alembic migrations build exactly the schema the code uses, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from integrations.db.tables import metadata


async def test_migrated_schema_matches_the_tables(db_url: str) -> None:
    engine = create_async_engine(db_url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
    await engine.dispose()
    assert diff == []
