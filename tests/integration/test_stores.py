"""The store register over REST and the CLI, on SQLite and PostgreSQL: GET/PUT /api/v1/stores/{code} with the API's
input checks, `orderbot stores add` / `list`, each change audited; a registered store may hold stock."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.cli import main
from config.settings import ApiSettings, Settings
from integrations.db import tables as t
from integrations.db.engine import Database
from tests.integration.helpers import rows
from tests.integration.test_cli import query, use

TOKEN = "t0k"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient[web.Request, web.Application]
STORE = {"name": "浦东店", "address": "上海市浦东新区川沙路100号", "phone": "021-50001234"}


@pytest.fixture
async def client(aiohttp_client: Any, db_url: str) -> Client:
    return await aiohttp_client(create_app(Settings(database_url=db_url, api=ApiSettings(token=TOKEN))))


async def test_put_registers_a_store_and_get_reads_it(client: Client, db: Database) -> None:
    resp = await client.get("/api/v1/stores/SH01", headers=AUTH)
    assert resp.status == 404 and "门店 SH01 没有登记" in (await resp.json())["message"]

    resp = await client.put("/api/v1/stores/SH01", json=STORE, headers=AUTH)
    assert resp.status == 200 and await resp.json() == {"code": "SH01", **STORE}
    resp = await client.put("/api/v1/stores/SH01", json={**STORE, "phone": "", "by": "ops1"}, headers=AUTH)
    assert (await resp.json())["phone"] == ""
    resp = await client.get("/api/v1/stores/SH01", headers=AUTH)
    assert await resp.json() == {"code": "SH01", **STORE, "phone": ""}

    trail = await rows(db, t.audit_log, t.audit_log.c.entity == "store")
    assert [(a["action"], a["actor"], a["via"]) for a in trail] == [
        ("register_store", "api", "api"), ("update_store", "ops1", "api")]
    assert trail[1]["detail"] == {"from": {"phone": "021-50001234"}, "to": {**STORE, "phone": ""}}


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/stores/SH01", {**STORE, "Address": "x"}, "Address"),  # unknown field: refused, not ignored
    ("/api/v1/stores/SH01", {**STORE, "phone": "call me"}, "phone"),
    ("/api/v1/stores/SH01", {**STORE, "name": "店" * 65}, "name"),
    ("/api/v1/stores/SH01", {"name": "浦东店"}, "address"),
    ("/api/v1/stores/SH%2001", STORE, "code"),
])
async def test_bad_input_is_400_and_changes_nothing(
    client: Client, db: Database, path: str, body: dict[str, Any], field: str
) -> None:
    resp = await client.put(path, json=body, headers=AUTH)
    assert resp.status == 400
    assert field in str(await resp.json())
    assert await rows(db, t.stores) == []


async def test_stores_need_the_token(client: Client) -> None:
    assert (await client.get("/api/v1/stores/SH01")).status == 401
    assert (await client.put("/api/v1/stores/SH01", json=STORE)).status == 401


async def test_a_registered_store_may_hold_stock(client: Client) -> None:
    resp = await client.put("/api/v1/inventory/SZ02/BP-001", json={"on_hand": 5}, headers=AUTH)
    assert resp.status == 404 and "orderbot stores add SZ02" in (await resp.json())["message"]
    await client.put("/api/v1/stores/SZ02", json=STORE, headers=AUTH)
    resp = await client.put("/api/v1/inventory/SZ02/BP-001", json={"on_hand": 5}, headers=AUTH)
    assert resp.status == 200


def test_cli_adds_updates_and_lists_stores(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ORDERBOT_CONFIG", raising=False)
    use(monkeypatch, db_url)
    assert main(["stores", "list"]) == 0
    assert "还没有登记门店" in capsys.readouterr().out
    assert main(["stores", "add", "SH01", "--name", "浦东店", "--address", "上海市浦东新区川沙路100号"]) == 0
    assert "已登记门店 SH01（浦东店）" in capsys.readouterr().out
    assert main(["stores", "add", "SH01", "--name", "浦东店", "--address", "上海市浦东新区川沙路100号",
                 "--phone", "021-50001234"]) == 0
    assert "已更新门店 SH01" in capsys.readouterr().out
    assert main(["stores", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == ["SH01\t浦东店\t上海市浦东新区川沙路100号\t021-50001234"]
    trail = query(db_url, t.audit_log, t.audit_log.c.entity == "store")
    assert [(a["action"], a["actor"], a["via"]) for a in trail] == [("register_store", "cli", "cli"),
                                                                     ("update_store", "cli", "cli")]


def test_cli_refuses_a_short_address_in_chinese(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ORDERBOT_CONFIG", raising=False)
    use(monkeypatch, db_url)
    assert main(["stores", "add", "SH01", "--name", "浦东店", "--address", "浦东"]) == 2
    assert "门店地址太短" in capsys.readouterr().err
    assert query(db_url, t.stores) == []
