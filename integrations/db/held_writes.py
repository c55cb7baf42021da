"""Writes a unit of work holds back on PostgreSQL, so that they reach the server together, in fewer round trips.

A lifecycle step saves the order (an UPDATE with its version check), writes the audit line and the event of the
change; its reactions queue outbox rows, and a shipment deducts stock (an UPDATE that must find enough). Held
back, they go to the server as one statement — each UPDATE and each table's rows a data-modifying CTE — when a
statement that could see them is about to run (anything but a plain read of other tables: a HotStatement through
`driver_connection`, any of SQLAlchemy's through `before_cursor_execute`) or at commit. The statement ends by
checking that each UPDATE touched its one row; if one did not, it aborts itself (orderbot_refuse, migration
0021) and that UPDATE's error — the version conflict, the missing stock — is raised. A unit of work that began no
transaction by then (its reads took no lock) sends that one statement without BEGIN and COMMIT: PostgreSQL runs a
statement atomically, so everything in it commits together or not at all. SQLite holds nothing back: there every
write runs when it is made."""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db.engine import HELD, HotStatement, autocommit_driver, driver_connection, driver_error

VALUES_ROWS = 4  # up to this many rows of a table go in as VALUES rows, more as unnest() of arrays (one SQL shape)
# UPDATEs held at once: an order's save and its shipment's stock (a part or three); a wave's hundred deductions run
# one by one, as the statement's size (and the prepared forms of each count) would cost more than the round trips
HELD_UPDATES = 4
Shape = tuple[tuple[HotStatement, int], ...]  # per table: its INSERT and its VALUES rows, or 0 for arrays
Guards = tuple[HotStatement, ...]  # the held UPDATEs, in the order held
Update = tuple[HotStatement, Mapping[str, Any], Exception]
_SQL: dict[tuple[Dialect, Guards, Shape], str] = {}
REFUSED = "OB409"  # the SQLSTATE orderbot_refuse raises with: "held update N touched no row"
_PLACEHOLDER = re.compile(r"\$(\d+)")


class HeldWrites:
    """What a unit of work holds back: UPDATEs that must each touch exactly one row (else the error held with it
    is raised), then rows for INSERTs, each table's rows in the order they were held. Falsy when it holds
    nothing."""

    __slots__ = ("inserts", "rows", "updates")

    def __init__(self) -> None:
        self.updates: list[Update] = []
        self.inserts: dict[HotStatement, list[Mapping[str, Any]]] = {}
        self.rows: set[Hashable] = set()  # the rows the held UPDATEs touch

    def __bool__(self) -> bool:
        return bool(self.updates) or bool(self.inserts)

    def clear(self) -> None:
        self.updates = []
        self.inserts = {}
        self.rows = set()

    def changes(self, tables: frozenset[str]) -> bool:
        """Whether what is held writes to any of `tables`."""
        return any(_table(stmt) in tables for stmt, _params, _error in self.updates) or any(
            _table(stmt) in tables for stmt in self.inserts)

    async def send(self, conn: Any, driver: Any) -> None:
        """Everything held, as one statement on `driver`: inside the transaction if one has begun, else committed
        by itself. `conn`: the AsyncConnection or SQLAlchemy Connection it belongs to (for the errors)."""
        updates, items = self.updates, list(self.inserts.items())
        self.clear()
        sql, args = _statement(conn.dialect, updates, items)
        try:
            if len(updates) == 1 and not items:  # a plain UPDATE: its row count says
                if int((await driver.execute(sql, *args)).rsplit(" ", 1)[-1]) != 1:
                    raise updates[0][2]
                return
            await driver.execute(sql, *args)
        except Exception as err:
            if getattr(err, "sqlstate", None) == REFUSED:
                raise updates[int(str(getattr(err, "message", err)).split()[2])][2] from None
            if err in (u[2] for u in updates):
                raise
            raise driver_error(conn, err, sql, args) from err


def _table(stmt: HotStatement) -> str:
    """The table an INSERT or UPDATE statement writes to."""
    return str(stmt.stmt.table.name)  # type: ignore[attr-defined]


def _held(conn: AsyncConnection) -> HeldWrites | None:
    held: HeldWrites | None = conn.info.get(HELD)
    return held


async def update_one(
    conn: AsyncConnection, stmt: HotStatement, params: Mapping[str, Any], row: Hashable, error: Exception
) -> None:
    """Run `stmt`, an UPDATE of the one row `row` names (a hashable key: table and primary key) that must touch
    it, else `error` is raised. Held back if the unit of work on `conn` holds writes back and has room for it
    (the error then surfaces when it is sent); run now otherwise (SQLite), after what is held."""
    held = _held(conn)
    if held is None or not stmt._fits(params) or len(held.updates) >= HELD_UPDATES:
        if await stmt.execute(conn, params) != 1:
            raise error
        return
    # one statement may not change a row twice, and its parts do not see each other's changes: a second change
    # of a row, or a change of a table rows were inserted into, waits for what is held to go first
    if row in held.rows or _table(stmt) in {_table(insert_) for insert_ in held.inserts}:
        await driver_connection(conn)
    held.updates.append((stmt, params, error))
    held.rows.add(row)


async def insert_rows(conn: AsyncConnection, *batches: tuple[HotStatement, Sequence[Mapping[str, Any]]]) -> None:
    """Rows for INSERT HotStatements, `(insert, rows)` per table: held back if the unit of work on `conn` holds
    writes (after the UPDATE it holds, if any), else run now, an executemany per table."""
    held = _held(conn)
    for stmt, rows in batches:
        if not rows:
            continue
        if held is not None and all(stmt._fits(row) for row in rows):
            held.inserts.setdefault(stmt, []).extend(rows)
        else:
            await stmt.executemany(conn, rows)


def held_rows(conn: AsyncConnection, table: str) -> list[Mapping[str, Any]]:
    """The rows held back for `table` on `conn`'s unit of work, oldest first (none on SQLite)."""
    held = _held(conn)
    if held is None:
        return []
    return [row for stmt, rows in held.inserts.items() if _table(stmt) == table for row in rows]


async def send_held(conn: AsyncConnection) -> None:
    """At commit: what is still held, inside the transaction if anything began it, else as a statement that
    commits by itself (no BEGIN, no COMMIT)."""
    held = _held(conn)
    if held:
        await held.send(conn, await autocommit_driver(conn))


def _statement(
    dialect: Dialect, updates: Sequence[Update], items: Sequence[tuple[HotStatement, Sequence[Mapping[str, Any]]]]
) -> tuple[str, list[Any]]:
    shape = tuple((stmt, len(rows) if len(rows) <= VALUES_ROWS else 0) for stmt, rows in items)
    guards = tuple(stmt for stmt, _params, _error in updates)
    sql = _SQL.get((dialect, guards, shape))
    if sql is None:
        sql = _SQL[dialect, guards, shape] = _build(dialect, guards, shape)
    args: list[Any] = []
    for stmt, params, _error in updates:
        args.extend(stmt.compiled(dialect).args(params))
    for (stmt, values_rows), (_stmt, rows) in zip(shape, items, strict=True):
        form = stmt.compiled(dialect)
        row_args = [form.args(row) for row in rows]
        if values_rows:
            for one in row_args:
                args.extend(one)
        else:
            args.extend(list(column) for column in zip(*row_args, strict=True))
    return sql, args


def _build(dialect: Dialect, guards: Guards, shape: Shape) -> str:
    """The UPDATEs as CTEs u0, u1, … and the tables' rows as w0, w1, …; the statement's own result checks the
    UPDATEs in order and aborts at the first that touched no row (a lone UPDATE is sent as it is)."""
    if len(guards) == 1 and not shape:
        return guards[0].compiled(dialect).sql
    parts: list[str] = []
    n = 0
    for k, guard in enumerate(guards):
        form = guard.compiled(dialect)
        if max(map(int, _PLACEHOLDER.findall(form.sql)), default=0) != len(form.slots):
            raise ValueError(f"{form.sql}: its placeholders are not numbered 1 to {len(form.slots)}")
        sql = _renumbered(form.sql, n)
        parts.append(f"u{k} AS ({sql} RETURNING 1)")
        n += len(form.slots)
    for k, (insert_, values_rows) in enumerate(shape):
        form = insert_.compiled(dialect)
        table = insert_.stmt.table  # type: ignore[attr-defined]
        columns = [table.c[name] for name, _process, _default in form.slots]
        names = ", ".join(dialect.identifier_preparer.format_column(column) for column in columns)
        # each value's type without length: a cast to varchar(n) would cut a long value silently, where the
        # column rejects it (as the plain INSERT does)
        types = [re.sub(r"\(\d+(,\s*\d+)?\)", "", dialect.type_compiler_instance.process(c.type)) for c in columns]
        if values_rows:
            rows = []
            for _ in range(values_rows):
                rows.append("(" + ", ".join(f"${n + i + 1}::{t}" for i, t in enumerate(types)) + ")")
                n += len(types)
            source = "VALUES " + ", ".join(rows)
        else:
            source = "SELECT * FROM unnest(" + ", ".join(f"${n + i + 1}::{t}[]" for i, t in enumerate(types)) + ")"
            n += len(types)
        parts.append(f"w{k} AS (INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) {source})")
    checks = " ".join(f"WHEN (SELECT count(*) FROM u{k}) <> 1 THEN orderbot_refuse({k})"
                      for k in range(len(guards)))
    result = f"SELECT CASE {checks} END" if checks else "SELECT 1"
    return f"WITH {', '.join(parts)} {result}"


def _renumbered(sql: str, after: int) -> str:
    """`sql` with its placeholders $1, $2, … numbered after the `after` of the parts before it."""
    return _PLACEHOLDER.sub(lambda m: f"${int(m.group(1)) + after}", sql)
