"""The engine and session factory: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) by URL."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import ARRAY, String, any_, bindparam, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.expression import ColumnElement, Executable, Select
from sqlalchemy.sql.util import find_tables
from sqlalchemy.util.concurrency import await_only, greenlet_spawn
from sqlalchemy.util.queue import AsyncAdaptedQueue


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if is_sqlite(url) and database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # the wait first: switching to WAL takes a lock, and a second engine opening the file at that moment would
    # otherwise fail at once with "database is locked". WAL is kept in the file, so it is switched only once.
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() != "wal":
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = is_sqlite(url)
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            ensure_sqlite_dir(url)
        else:
            # no pre-ping: it costs a round trip per unit of work; stale connections are recycled instead
            kwargs = {"pool_size": pool_size, "max_overflow": pool_size, "pool_recycle": 1800}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _tune_sqlite)
        else:
            event.listen(self.engine.sync_engine, "before_cursor_execute", _send_held)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)
        self._keepers: list[Callable[[], Awaitable[None]]] = []

    def keeps_connection(self, give_back: Callable[[], Awaitable[None]]) -> None:
        """A user that keeps a connection checked out between its statements: `give_back` returns it to the pool,
        and runs at `dispose` if its owner has not run it by then."""
        self._keepers.append(give_back)

    async def dispose(self) -> None:
        keepers, self._keepers = self._keepers, []
        for give_back in keepers:
            await give_back()
        await self.engine.dispose()


# -- the hot statements: compiled once, run on the asyncpg connection inside the unit of work's transaction

_ADAPTED = "orderbot.asyncpg_adapted"
HELD = "orderbot.held_writes"  # a unit of work's HeldWrites (integrations/db/held_writes.py), while it runs


async def driver_connection(conn: AsyncConnection, *, reads: frozenset[str] | None = None) -> Any | None:
    """The asyncpg connection under `conn`, its transaction begun and the writes held back so far sent
    (held_writes); None on any other driver.

    It is the connection and the transaction SQLAlchemy commits or rolls back: statements run on it are part
    of the unit of work, without SQLAlchemy's per-execute cost (which is larger than the round trip itself).
    `reads`: the tables of a plain read (no lock, no side effect). It runs as things are when nothing held
    back writes to them: inside the transaction if one has begun, else on its own — under READ COMMITTED each
    statement reads its own snapshot, in a transaction or not, so it reads the same and saves the BEGIN."""
    if conn.dialect.driver != "asyncpg":
        return None
    info = conn.info
    adapted = await _adapted(conn, info)
    held = info.get(HELD)
    if reads is not None and not (held and held.changes(reads)):
        return adapted.driver_connection
    if adapted._transaction is None:  # SQLAlchemy's adapter begins lazily, at the first statement; so do we
        await adapted._start_transaction()
    if held:
        await held.send(conn, adapted.driver_connection)
    return adapted.driver_connection


async def autocommit_driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under `conn`, with no transaction begun: each statement commits by itself, one
    round trip. For a statement that stands on its own on the hottest paths; asyncpg only."""
    return (await _adapted(conn, conn.info)).driver_connection


async def _adapted(conn: AsyncConnection, info: Any) -> Any:
    """SQLAlchemy's adapter of the asyncpg connection under `conn`. Kept in the pooled DBAPI connection's info: looked
    up once per connection, not per unit of work."""
    adapted: Any = info.get(_ADAPTED)
    if adapted is None:
        adapted = info[_ADAPTED] = (await conn.get_raw_connection()).dbapi_connection
    return adapted


def _send_held(conn: Any, *_args: Any) -> None:
    """SQLAlchemy's `before_cursor_execute`: the writes a unit of work holds back go first, inside its transaction
    (this runs in SQLAlchemy's greenlet, where a coroutine is awaited with await_only)."""
    held = conn.info.get(HELD)
    if held:
        adapted = conn.connection.dbapi_connection
        if adapted._transaction is None:
            await_only(adapted._start_transaction())
        await_only(held.send(conn, adapted.driver_connection))


def driver_error(conn: AsyncConnection, err: Exception, sql: str, params: Any = None) -> Exception:
    """What SQLAlchemy would have raised for `err` from a statement run straight on asyncpg (IntegrityError for a
    duplicate key, and so on)."""
    dbapi = conn.dialect.loaded_dbapi
    if isinstance(err, dbapi.Error):
        return DBAPIError.instance(sql, params, err, dbapi.Error, dialect=conn.dialect)
    try:
        conn.info[_ADAPTED]._handle_exception(err)  # asyncpg's exception classes mapped to the DBAPI's
    except dbapi.Error as mapped:
        return DBAPIError.instance(sql, params, mapped, dbapi.Error, dialect=conn.dialect)
    except Exception as other:
        return other
    return err


async def commit(conn: AsyncConnection) -> None:
    """`conn.commit()`. On asyncpg the COMMIT goes straight to the driver; SQLAlchemy's own bookkeeping then has no
    I/O left to do and runs without a greenlet round (which costs about as much as the round trip itself)."""
    adapted: Any = conn.info.get(_ADAPTED) if conn.dialect.driver == "asyncpg" else None
    if adapted is None:
        await conn.commit()
        return
    if adapted._transaction is None:  # nothing began one (or the unit of work's one statement committed itself)
        conn.sync_connection.commit()  # type: ignore[union-attr]  # no I/O: the driver has nothing to commit
        return
    try:
        await adapted._call_and_discard(adapted._transaction.commit)
    except Exception as err:  # as SQLAlchemy reports it (and invalidates a lost connection), in its greenlet
        await greenlet_spawn(_raise_as_sqlalchemy, conn, adapted, err)
        raise
    conn.sync_connection.commit()  # type: ignore[union-attr]  # the driver's transaction is gone: no I/O


def _raise_as_sqlalchemy(conn: AsyncConnection, adapted: Any, err: Exception) -> None:
    try:
        adapted._handle_exception(err)  # the DBAPI's exception class for asyncpg's
    except Exception as mapped:
        conn.sync_connection._handle_dbapi_exception(mapped, None, None, None, None)  # type: ignore[union-attr]


async def close(conn: AsyncConnection) -> None:
    """`conn.close()`, without a greenlet round when giving the connection back does no I/O: asyncpg, nothing
    left to roll back, and room in the pool (an overflow connection is closed, a lost one discarded)."""
    adapted: Any = conn.info.get(_ADAPTED) if conn.dialect.driver == "asyncpg" and not conn.invalidated else None
    pool: Any = conn.sync_engine.pool
    idle: Any = getattr(pool, "_pool", None)
    if (adapted is None or adapted._transaction is not None or adapted._connection.is_closed()
            or not isinstance(idle, AsyncAdaptedQueue) or idle.full()):
        await conn.close()
        return
    conn.sync_connection.close()  # type: ignore[union-attr]


def in_list(
    stmt: Select[Any], column: ColumnElement[Any], name: str, *, read: bool | frozenset[str] = False
) -> HotStatement:
    """`stmt` WHERE `column` IN the list given as parameter `name`: for PostgreSQL as `= ANY(array)` (one prepared
    statement for any length; the elements' type without its length, so a longer value is compared, not cut), and
    as an expanding IN for the others."""
    return HotStatement(stmt.where(column == any_(bindparam(name, type_=ARRAY(String())))),
                        elsewhere=stmt.where(column.in_(bindparam(name, expanding=True))), read=read)


class HotStatement:
    """A Core statement run straight on asyncpg (SQL, parameter order and bind processors taken from its
    compiled form), or through SQLAlchemy on other drivers. Errors surface as the same sqlalchemy.exc types."""

    def __init__(
        self, stmt: Executable, keys: Sequence[str] | None = None, *, elsewhere: Executable | None = None,
        read: bool | frozenset[str] = False,
    ) -> None:
        """`elsewhere`: what other drivers run instead, with the same parameters (an expanding IN where
        PostgreSQL takes the list as one array: `= ANY(...)`, one statement whatever the list's length).
        `read`: a plain read — no lock, no side effect — that need not wait for the writes held back to other
        tables (see driver_connection); or the tables whose held writes it must wait for, where its caller
        reads the held rows of the others itself (held_writes.held_rows)."""
        self.stmt = stmt
        self.reads: frozenset[str] | None = None
        if read is not False:
            if not isinstance(stmt, Select) or stmt._for_update_arg is not None:
                raise ValueError("only a SELECT without FOR UPDATE is a plain read")
            self.reads = read if isinstance(read, frozenset) else frozenset(
                table.name for table in find_tables(stmt, check_columns=True))
        self.elsewhere = elsewhere if elsewhere is not None else stmt
        self.keys = frozenset(keys) if keys is not None else None
        self._forms: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()

    def compiled(self, dialect: Dialect) -> _Compiled:
        """Its SQL and parameter slots for `dialect` (compiled once)."""
        form = self._forms.get(dialect)
        if form is None:
            form = self._forms[dialect] = _Compiled(self.stmt, dialect, self.keys)
        return form

    def _fits(self, params: Mapping[str, Any]) -> bool:
        return self.keys is None or params.keys() == self.keys

    async def fetch(self, conn: AsyncConnection, params: Mapping[str, Any]) -> Sequence[Any]:
        """Every row, each read by column name (a RowMapping or an asyncpg Record)."""
        driver = await driver_connection(conn, reads=self.reads)
        if driver is None or not self._fits(params):
            return (await conn.execute(self.elsewhere, params)).mappings().all()
        form = self.compiled(conn.dialect)
        try:
            return await driver.fetch(form.sql, *form.args(params))  # type: ignore[no-any-return]
        except Exception as err:
            raise form.translated(conn, err, params) from err

    async def fetchrow(self, conn: AsyncConnection, params: Mapping[str, Any]) -> Any | None:
        """The first row, as something read by column name (a RowMapping or an asyncpg Record)."""
        driver = await driver_connection(conn, reads=self.reads)
        if driver is None or not self._fits(params):
            row = (await conn.execute(self.elsewhere, params)).first()
            return row._mapping if row is not None else None
        form = self.compiled(conn.dialect)
        try:
            return await driver.fetchrow(form.sql, *form.args(params))  # type: ignore[no-any-return]
        except Exception as err:
            raise form.translated(conn, err, params) from err

    async def execute(self, conn: AsyncConnection, params: Mapping[str, Any]) -> int:
        """Run it once; the number of rows it touched."""
        driver = await driver_connection(conn)
        if driver is None or not self._fits(params):
            return (await conn.execute(self.elsewhere, params)).rowcount  # type: ignore[attr-defined, no-any-return]
        form = self.compiled(conn.dialect)
        try:
            status: str = await driver.execute(form.sql, *form.args(params))
        except Exception as err:
            raise form.translated(conn, err, params) from err
        return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else -1

    async def executemany(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run it for every row in one pipelined round trip."""
        if len(rows) == 1:
            await self.execute(conn, rows[0])
            return
        driver = await driver_connection(conn)
        if driver is None or not all(self._fits(row) for row in rows):
            await conn.execute(self.elsewhere, list(rows))
            return
        form = self.compiled(conn.dialect)
        try:
            await driver.executemany(form.sql, [form.args(row) for row in rows])
        except Exception as err:
            raise form.translated(conn, err, rows) from err


_REQUIRED = object()


class _Compiled:
    """One statement compiled for one dialect: positional SQL and, per position, the name and bind processor."""

    def __init__(self, stmt: Executable, dialect: Dialect, keys: frozenset[str] | None) -> None:
        # for_executemany: no implicit RETURNING of the new row's id, which nobody reads here
        compiled = stmt.compile(  # type: ignore[attr-defined]
            dialect=dialect, column_keys=sorted(keys) if keys is not None else None, for_executemany=True,
        )
        self.sql = str(compiled)
        self.dialect = dialect
        self.slots: list[tuple[str, Any, Any]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            if bind.callable is not None:
                raise ValueError(f"{name}: a hot statement takes every value from its parameters or a literal")
            impl = bind.type.dialect_impl(dialect)
            self.slots.append((name, impl.bind_processor(dialect), _REQUIRED if bind.required else bind.value))

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        out = []
        for name, process, default in self.slots:
            value = params[name] if default is _REQUIRED else params.get(name, default)
            out.append(process(value) if process is not None else value)
        return out

    def translated(self, conn: AsyncConnection, err: Exception, params: Any, *, sql: str | None = None) -> Exception:
        """The exception SQLAlchemy would have raised (see driver_error)."""
        return driver_error(conn, err, sql or self.sql, params)
