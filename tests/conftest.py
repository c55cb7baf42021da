"""Database fixtures: every integration test runs on SQLite and on a PostgreSQL database of its own run.

Locally a missing PostgreSQL skips those tests with the reason shown; under CI=true it fails the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from handlers.bootstrap import build_bus
from handlers.bus import Deps, MessageBus
from integrations.db import migrate
from integrations.db.engine import Database
from integrations.db.tables import metadata

PG_ADMIN = os.environ.get("ORDERBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, migrated to head, dropped at the end."""
    name = f"orderbot_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as err:
        reason = f"PostgreSQL not reachable at {PG_ADMIN}: {type(err).__name__}: {err}"
        if IN_CI:
            pytest.fail(f"CI=true requires PostgreSQL. {reason}")
        pytest.skip(reason)
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    migrate.upgrade(url)
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "orderbot.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


async def _truncate_pg(url: str) -> None:
    import asyncpg

    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "orderbot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    asyncio.run(_truncate_pg(url))
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "orderbot.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
def deps() -> Deps:
    return Deps()


@pytest.fixture
def bus(db: Database, deps: Deps) -> MessageBus:
    return build_bus(db, deps)
