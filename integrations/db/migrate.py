"""Alembic, driven from code: `orderbot db upgrade` and the test fixtures both call `upgrade`."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from integrations.db.engine import ensure_sqlite_dir

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Run migrations to `revision`. Synchronous: call it before the event loop starts, or in a thread."""
    ensure_sqlite_dir(database_url)
    command.upgrade(alembic_config(database_url), revision)
    _sqlite_wal(database_url)


def _sqlite_wal(database_url: str) -> None:
    """A SQLite file leaves migration in WAL mode (kept in the file). Switching takes an exclusive lock, which
    two engines opening a fresh file at once could not both get ("database is locked" at connect): done here,
    by one process, before any engine opens it."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    with contextlib.closing(sqlite3.connect(url.database, timeout=10)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def current(database_url: str) -> None:
    command.current(alembic_config(database_url))


def head_revision() -> str:
    """The newest migration this code has."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions()}


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at (alembic_version), None when it has none (never migrated).

    Connects, so it raises what the driver raises when the database cannot be reached. A SQLite file that does
    not exist is not created: it has no revision."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not _is_file(str(url.database)):
            return None
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_revision)
    finally:
        await engine.dispose()


def _is_file(path: str) -> bool:
    return os.path.isfile(path)


def _revision(connection: Any) -> str | None:
    chatty = logging.getLogger("alembic.runtime.migration")  # "Context impl …" at INFO on every configure
    level = chatty.level
    chatty.setLevel(logging.WARNING)
    try:
        return MigrationContext.configure(connection).get_current_revision()
    finally:
        chatty.setLevel(level)
