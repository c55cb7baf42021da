"""The database a command opens from the settings for its run, and disposes of when the run ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from config.settings import Settings
from integrations.db.engine import Database


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """`async with open_database(settings) as db:` the engine is disposed when the block ends, however it ends."""
    db = Database(settings.database_url)
    try:
        yield db
    finally:
        await db.dispose()
