"""The `orderbot` command in-process: db upgrade, users add/list, what it prints and what it stores.

bot.cli.main runs asyncio.run itself, so these are plain synchronous tests.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bot.cli import main
from integrations.db import tables as t
from integrations.db.engine import Database
from tests.integration.helpers import rows


@pytest.fixture(autouse=True)
def no_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERBOT_CONFIG", raising=False)


def use(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("ORDERBOT_DATABASE_URL", url)


def query(url: str, table: Any, *where: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        db = Database(url)
        try:
            return await rows(db, table, *where)
        finally:
            await db.dispose()

    return asyncio.run(run())


def listed(capsys: pytest.CaptureFixture[str]) -> list[list[str]]:
    assert main(["users", "list"]) == 0
    return [line.split("\t") for line in capsys.readouterr().out.splitlines()]


def test_db_upgrade_on_a_fresh_sqlite_path_creates_the_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "var" / "fresh.db"
    use(monkeypatch, f"sqlite+aiosqlite:///{path}")
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert "数据库已升级到最新版本" in out and "fresh.db" in out
    with sqlite3.connect(path) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"orders", "inventory", "aftersales", "users", "audit_log", "outbox", "alembic_version"} <= tables
    assert main(["db", "upgrade"]) == 0  # a second run is a no-op, not an error
    assert "数据库已升级到最新版本" in capsys.readouterr().out


def test_db_upgrade_does_not_print_the_password(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_url(pg_url)
    if not url.password:  # a trust-auth test server ignores a made-up password
        url = url.set(password="s3cret-pw")
    use(monkeypatch, url.render_as_string(hide_password=False))
    try:
        code = main(["db", "upgrade"])
    except Exception as err:  # a server that checks passwords refuses the made-up one
        pytest.skip(f"server refused the made-up password: {type(err).__name__}")
    assert code == 0
    out = capsys.readouterr().out
    assert "数据库已升级到最新版本" in out and "***" in out
    assert str(url.password) not in out


def test_users_add_then_list(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    use(monkeypatch, db_url)
    assert main(["users", "add", "sup1", "--name", "李敏", "--role", "supervisor"]) == 0
    assert "已添加用户 sup1（李敏，主管）" in capsys.readouterr().out
    assert listed(capsys) == [["sup1", "李敏", "supervisor", "-", "sup1"]]
    [row] = query(db_url, t.users)
    assert (row["userid"], row["name"], row["roles"], row["store"]) == ("sup1", "李敏", ["supervisor"], None)
    [audit] = query(db_url, t.audit_log, t.audit_log.c.entity == "user")
    assert (audit["entity_id"], audit["action"], audit["actor"], audit["via"]) == ("sup1", "add_user", "cli", "cli")
    assert audit["outcome"] == "ok"


def test_adding_the_same_user_again_updates_it(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, db_url)
    assert main(["users", "add", "sup1", "--name", "李敏", "--role", "supervisor"]) == 0
    capsys.readouterr()
    assert main(["users", "add", "sup1", "--name", "李敏华", "--role", "supervisor", "--role", "manager"]) == 0
    out = capsys.readouterr().out
    assert "已更新用户 sup1" in out and "李敏华" in out
    assert listed(capsys) == [["sup1", "李敏华", "manager,supervisor", "-", "sup1"]]
    assert len(query(db_url, t.users)) == 1
    actions = [a["action"] for a in query(db_url, t.audit_log, t.audit_log.c.entity == "user")]
    assert actions == ["add_user", "update_user"]


def test_warehouse_staff_need_a_store(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, sqlite_url)
    assert main(["users", "add", "wh1", "--name", "王强", "--role", "warehouse"]) == 2
    captured = capsys.readouterr()
    assert "错误：" in captured.err and "必须指定门店" in captured.err
    assert "已添加" not in captured.out
    assert query(sqlite_url, t.users) == []
    assert query(sqlite_url, t.audit_log) == []


def test_warehouse_staff_with_a_store(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, sqlite_url)
    assert main(["users", "add", "wh1", "--name", "王强", "--role", "warehouse", "--store", "SH01"]) == 0
    assert "已添加用户 wh1（王强，仓管）" in capsys.readouterr().out
    assert listed(capsys) == [["wh1", "王强", "warehouse", "SH01", "wh1"]]


@pytest.mark.parametrize(
    "argv",
    [
        ["users", "add", "x1", "--name", "某人", "--role", "boss"],
        ["users", "add", "x1", "--role", "supervisor"],
        ["users", "add", "x1", "--name", "某人"],
        ["users", "remove", "x1"],
    ],
    ids=["unknown-role", "no-name", "no-role", "unknown-action"],
)
def test_bad_arguments_exit_2_before_touching_the_database(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    use(monkeypatch, sqlite_url)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage: orderbot" in capsys.readouterr().err
    assert query(sqlite_url, t.users) == []


def test_unknown_role_names_the_choices(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, sqlite_url)
    with pytest.raises(SystemExit):
        main(["users", "add", "x1", "--name", "某人", "--role", "boss"])
    err = capsys.readouterr().err
    assert "boss" in err and "supervisor" in err


def test_dingtalk_id_is_stored(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, sqlite_url)
    assert main(["users", "add", "fin1", "--name", "赵敏", "--role", "finance", "--dingtalk-id", "manager4821"]) == 0
    [row] = query(sqlite_url, t.users)
    assert row["dingtalk_id"] == "manager4821"
    capsys.readouterr()
    assert listed(capsys) == [["fin1", "赵敏", "finance", "-", "manager4821"]]


def test_a_dingtalk_id_already_taken_is_refused_in_chinese(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, sqlite_url)
    assert main(["users", "add", "sup1", "--name", "李敏", "--role", "supervisor", "--dingtalk-id", "d1"]) == 0
    capsys.readouterr()
    assert main(["users", "add", "sup2", "--name", "张伟", "--role", "supervisor", "--dingtalk-id", "d1"]) == 2
    assert "d1" in capsys.readouterr().err
    assert [u["userid"] for u in query(sqlite_url, t.users)] == ["sup1"]


def test_users_list_when_there_are_none(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, sqlite_url)
    assert main(["users", "list"]) == 0
    assert "还没有用户" in capsys.readouterr().out
