"""The REST API through aiohttp's test client, on SQLite and PostgreSQL: what a caller sees, and what is stored."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.keys import DB, SETTINGS
from config.settings import ApiSettings, HttpSettings, Settings
from domain.clock import utcnow
from domain.users import User
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork
from tests.integration.helpers import rows

TOKEN = "t0k"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADDRESS = "上海市浦东新区张杨路500号"

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


def order_body(external_id: str = "DY1001", *, qty: int = 2, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "douyin",
        "external_id": external_id,
        "customer": {"id": "C-4S-01", "name": "浦东4S店", "phone": "13800000000"},
        "address": ADDRESS,
        "store": "SH01",
        "paid": True,
        "lines": [{"sku": "BP-001", "qty": qty, "unit_price": "199.00", "name": "刹车片"}],
    }
    body.update(changes)
    return body


async def add_store(app: web.Application, store: str = "SH01") -> None:
    """A store exists for the API once somebody works there (`orderbot users add … --store`)."""
    async with UnitOfWork(app[DB]) as uow:
        await uow.users.upsert(User(f"wh-{store}", "仓管", frozenset({"warehouse"}), store), utcnow())
        await uow.commit()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, db_url: str) -> Client:
    app_client = await aiohttp_client(create_app(Settings(database_url=db_url, api=ApiSettings(token=TOKEN))))
    await add_store(app_client.app)
    return app_client


async def put_stock(client: Client, on_hand: int, store: str = "SH01", sku: str = "BP-001") -> dict[str, Any]:
    resp = await client.put(f"/api/v1/inventory/{store}/{sku}", json={"on_hand": on_hand}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def get_stock(client: Client, store: str = "SH01", sku: str = "BP-001") -> dict[str, Any]:
    resp = await client.get(f"/api/v1/inventory/{store}/{sku}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def new_order(client: Client, *, on_hand: int = 10, qty: int = 2) -> dict[str, Any]:
    await put_stock(client, on_hand)
    resp = await client.post("/api/v1/orders", json=order_body(qty=qty), headers=AUTH)
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def trigger(client: Client, order_no: str, name: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.post(
        f"/api/v1/orders/{order_no}/trigger", json={"trigger": name, **extra}, headers=AUTH
    )
    return resp.status, await resp.json()


async def ship(client: Client, order_no: str, waybill: str = "SF1234567890") -> dict[str, Any]:
    for name in ("pick", "check"):
        status, data = await trigger(client, order_no, name)
        assert status == 200, data
    status, data = await trigger(client, order_no, "pack", waybill=waybill)
    assert status == 200, data
    status, data = await trigger(client, order_no, "ship")
    assert status == 200, data
    return data


async def table(client: Client, tbl: Any, *where: Any) -> list[dict[str, Any]]:
    return await rows(client.app[DB], tbl, *where)


async def anomalies(client: Client) -> float:
    resp = await client.get("/metrics")
    assert resp.status == 200
    found = re.search(r"^orderbot_state_jump_anomalies_total (\S+)$", await resp.text(), re.MULTILINE)
    assert found is not None
    return float(found.group(1))


# --- authentication ---


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
async def test_missing_or_wrong_token_is_401_and_writes_nothing(client: Client, headers: dict[str, str]) -> None:
    resp = await client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthorized"
    resp = await client.put("/api/v1/inventory/SH01/BP-001", json={"on_hand": 10}, headers=headers)
    assert resp.status == 401
    resp = await client.get("/api/v1/orders/DY1001", headers=headers)
    assert resp.status == 401
    assert await table(client, t.orders) == []
    assert await table(client, t.inventory) == []


# --- inventory ---


async def test_put_then_get_inventory(client: Client) -> None:
    put = await put_stock(client, 10)
    assert put == {"store": "SH01", "sku": "BP-001", "on_hand": 10, "reserved": 0, "available": 10}
    assert await get_stock(client) == put
    [row] = await table(client, t.inventory)
    assert (row["store"], row["sku"], row["on_hand"]) == ("SH01", "BP-001", 10)


async def test_unknown_stock_is_404_in_chinese(client: Client) -> None:
    resp = await client.get("/api/v1/inventory/SH01/NOPE", headers=AUTH)
    assert resp.status == 404
    assert "没有 NOPE 的库存记录" in (await resp.json())["message"]


async def test_on_hand_below_reserved_is_400_naming_the_reason(client: Client) -> None:
    await new_order(client, on_hand=10, qty=6)
    resp = await client.put("/api/v1/inventory/SH01/BP-001", json={"on_hand": 5}, headers=AUTH)
    assert resp.status == 400
    data = await resp.json()
    assert data["error"] == "invalid_input"
    assert "6 件被订单占用" in data["message"] and "不能少于占用数" in data["message"]
    assert (await get_stock(client))["on_hand"] == 10


@pytest.mark.parametrize("body", [{"on_hand": -1}, {"on_hand": "many"}, {}])
async def test_bad_stock_body_is_400_naming_on_hand(client: Client, body: dict[str, Any]) -> None:
    resp = await client.put("/api/v1/inventory/SH01/BP-001", json=body, headers=AUTH)
    assert resp.status == 400
    assert "on_hand" in (await resp.json())["message"]
    assert await table(client, t.inventory) == []


# --- creating orders ---


async def test_post_order_allocates_and_reserves_stock(client: Client) -> None:
    await put_stock(client, 10)
    resp = await client.post("/api/v1/orders", json=order_body(), headers=AUTH)
    assert resp.status == 201
    data = await resp.json()
    assert (data["state"], data["label"], data["store"]) == ("split", "已拆单", "SH01")
    assert data["order_no"].startswith("OB")
    assert data["amount"] == "398.00"
    assert data["customer"] == {"id": "C-4S-01", "name": "浦东4S店", "phone": "13800000000",
                                "other_orders": {"total": 0, "orders": []}}
    stock = await get_stock(client)
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (10, 2, 8)
    [row] = await table(client, t.orders)
    assert (row["order_no"], row["state"]) == (data["order_no"], "split")


async def test_the_same_post_twice_is_one_order(client: Client) -> None:
    first = await new_order(client)
    resp = await client.post("/api/v1/orders", json=order_body(), headers=AUTH)
    assert resp.status == 200
    assert (await resp.json())["order_no"] == first["order_no"]
    assert len(await table(client, t.orders)) == 1
    assert (await get_stock(client))["reserved"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (order_body(qty=0), "lines.0.qty"),
        (order_body(customer={"openid": "o 1"}), "customer.openid"),
        (order_body(lines=[{"sku": "BP-001", "qty": 1, "unit_price": "abc"}]), "lines.0.unit_price"),
        (order_body(lines=[]), "lines"),
        (order_body(channel="  "), "channel"),
    ],
    ids=["qty-0", "openid-space", "price-abc", "no-lines", "blank-channel"],
)
async def test_bad_order_body_is_400_naming_the_field(client: Client, body: dict[str, Any], field: str) -> None:
    await put_stock(client, 10)
    resp = await client.post("/api/v1/orders", json=body, headers=AUTH)
    assert resp.status == 400
    data = await resp.json()
    assert data["error"] == "invalid_body"
    assert field in data["message"]
    assert field in [f["field"] for f in data["fields"]]
    assert await table(client, t.orders) == []
    assert (await get_stock(client))["reserved"] == 0


@pytest.mark.parametrize("raw", [b"not json at all", b"{\"channel\": ", b"\xff\xfe"])
async def test_a_body_that_is_not_json_is_400(client: Client, raw: bytes) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    resp = await client.post("/api/v1/orders", data=raw, headers=headers)
    assert resp.status == 400
    data = await resp.json()
    assert data["error"] == "invalid_json" and "JSON" in data["message"]
    assert await table(client, t.orders) == []


@pytest.mark.parametrize("raw", [b"[]", b"null", b"\"text\""])
async def test_json_that_is_not_an_object_is_400(client: Client, raw: bytes) -> None:
    resp = await client.post("/api/v1/orders", data=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_body"
    assert await table(client, t.orders) == []


async def test_a_body_over_the_limit_is_413(client: Client) -> None:
    limit = client.app[SETTINGS].http.max_body_bytes
    body = order_body(address="上" * limit)
    resp = await client.post("/api/v1/orders", json=body, headers=AUTH)
    assert resp.status == 413
    data = await resp.json()
    assert data["error"] == "body_too_large" and str(limit) in data["message"]
    assert await table(client, t.orders) == []


async def test_the_body_limit_comes_from_settings(aiohttp_client: ClientFactory, db_url: str) -> None:
    settings = Settings(database_url=db_url, api=ApiSettings(token=TOKEN), http=HttpSettings(max_body_bytes=200))
    client = await aiohttp_client(create_app(settings))
    await add_store(client.app)
    resp = await client.post("/api/v1/orders", json=order_body(), headers=AUTH)
    assert resp.status == 413
    resp = await client.put("/api/v1/inventory/SH01/BP-001", json={"on_hand": 1}, headers=AUTH)
    assert resp.status == 200


# --- reading orders ---


async def test_get_order_shows_state_lines_address_waybill_history(client: Client) -> None:
    created = await new_order(client)
    resp = await client.get(f"/api/v1/orders/{created['order_no']}", headers=AUTH)
    assert resp.status == 200
    data = await resp.json()
    assert (data["order_no"], data["state"], data["label"]) == (created["order_no"], "split", "已拆单")
    assert data["lines"] == [{"sku": "BP-001", "name": "刹车片", "qty": 2, "unit_price": "199.00"}]
    assert data["address"] == ADDRESS
    assert data["waybill"] is None
    assert [n["trigger"] for n in data["next"]] == ["pick", "cancel"]
    steps = [(h["action"], h["from"], h["to"]) for h in data["history"]]
    assert ("create", None, "paid") in steps and ("allocate", "paid", "split") in steps
    assert all((h["actor"], h["via"]) == ("api", "api") for h in data["history"])


async def test_get_order_by_external_id_and_waybill(client: Client) -> None:
    created = await new_order(client)
    resp = await client.get("/api/v1/orders/DY1001", headers=AUTH)
    assert resp.status == 200
    assert (await resp.json())["order_no"] == created["order_no"]
    await ship(client, created["order_no"], waybill="SF9")
    resp = await client.get("/api/v1/orders/SF9", headers=AUTH)
    assert (await resp.json())["order_no"] == created["order_no"]


async def test_unknown_order_is_404_in_chinese(client: Client) -> None:
    resp = await client.get("/api/v1/orders/OB404", headers=AUTH)
    assert resp.status == 404
    data = await resp.json()
    assert data["error"] == "not_found" and "找不到订单 OB404" in data["message"]
    status, data = await trigger(client, "OB404", "pick")
    assert status == 404 and "找不到订单" in data["message"]


# --- lifecycle ---


async def test_ship_from_split_is_409_and_counted_as_an_anomaly(client: Client) -> None:
    created = await new_order(client)
    before = await anomalies(client)
    status, data = await trigger(client, created["order_no"], "ship", waybill="SF1")
    assert status == 409
    assert data["error"] == "illegal_transition" and "不能发货" in data["message"]
    assert await anomalies(client) == before + 1
    resp = await client.get(f"/api/v1/orders/{created['order_no']}", headers=AUTH)
    order = await resp.json()
    assert (order["state"], order["waybill"]) == ("split", None)
    [refusal] = await table(client, t.audit_log, t.audit_log.c.outcome == "refused")
    assert (refusal["entity_id"], refusal["action"], refusal["via"]) == (created["order_no"], "ship", "api")


async def test_ship_without_waybill_is_409(client: Client) -> None:
    created = await new_order(client)
    for name in ("pick", "check", "pack"):
        assert (await trigger(client, created["order_no"], name))[0] == 200
    status, data = await trigger(client, created["order_no"], "ship")
    assert status == 409
    assert data["error"] == "guard_refused" and "还没有运单号" in data["message"]


async def test_unknown_trigger_is_400(client: Client) -> None:
    created = await new_order(client)
    status, data = await trigger(client, created["order_no"], "teleport")
    assert status == 400 and "trigger" in data["message"]


async def test_full_drive_through_the_trigger_route_ships_and_deducts(client: Client) -> None:
    created = await new_order(client)
    shipped = await ship(client, created["order_no"], waybill="SF1234567890")
    assert (shipped["state"], shipped["label"], shipped["waybill"]) == ("shipped", "已发货", "SF1234567890")
    assert shipped["shipped_at"] is not None
    stock = await get_stock(client)
    assert (stock["on_hand"], stock["reserved"]) == (8, 0)
    moves = [(h["from"], h["to"]) for h in shipped["history"] if h["action"] in ("pick", "check", "pack", "ship")]
    assert moves == [
        ("split", "picking"), ("picking", "quality_check"), ("quality_check", "packed"), ("packed", "shipped")
    ]
    [receivable] = await table(client, t.receivables)
    assert (receivable["order_no"], receivable["amount_fen"]) == (created["order_no"], 39_800)


# --- address changes ---


async def test_address_change_after_shipping_is_409(client: Client) -> None:
    created = await new_order(client)
    await ship(client, created["order_no"])
    resp = await client.post(
        f"/api/v1/orders/{created['order_no']}/address", json={"address": "上海市徐汇区漕溪北路1号"}, headers=AUTH
    )
    assert resp.status == 409
    assert "订单已发货，不能改地址" in (await resp.json())["message"]
    [row] = await table(client, t.orders)
    assert row["address"] == ADDRESS


async def test_address_change_while_picking_holds_the_parcel(client: Client) -> None:
    created = await new_order(client)
    assert (await trigger(client, created["order_no"], "pick"))[0] == 200
    new_address = "上海市徐汇区漕溪北路1号"
    resp = await client.post(
        f"/api/v1/orders/{created['order_no']}/address", json={"address": new_address}, headers=AUTH
    )
    assert resp.status == 200
    data = await resp.json()
    assert (data["state"], data["address"]) == ("picking", new_address)
    assert data["address_change_pending"] is True
    assert data["waybill"] is None
    assert any(h["action"] == "change_address" and h["actor"] == "customer" for h in data["history"])


async def test_address_change_when_packed_voids_the_waybill_and_blocks_shipping(client: Client) -> None:
    created = await new_order(client)
    for name, extra in (("pick", {}), ("check", {}), ("pack", {"waybill": "SF1"})):
        assert (await trigger(client, created["order_no"], name, **extra))[0] == 200
    resp = await client.post(
        f"/api/v1/orders/{created['order_no']}/address", json={"address": "上海市徐汇区漕溪北路1号"}, headers=AUTH
    )
    data = await resp.json()
    assert (resp.status, data["waybill"], data["address_change_pending"]) == (200, None, True)
    status, refused = await trigger(client, created["order_no"], "ship", waybill="SF2")
    assert status == 409 and "换贴新面单" in refused["message"]


async def test_address_too_short_is_400(client: Client) -> None:
    created = await new_order(client)
    resp = await client.post(f"/api/v1/orders/{created['order_no']}/address", json={"address": "上海"}, headers=AUTH)
    assert resp.status == 400
    assert "address" in (await resp.json())["message"]


# --- after-sales ---


async def open_aftersale(client: Client, order_no: str, amount: str) -> tuple[int, dict[str, Any]]:
    body = {"order_no": order_no, "kind": "refund", "reason": "刹车片异响", "amount": amount}
    resp = await client.post("/api/v1/aftersales", json=body, headers=AUTH)
    return resp.status, await resp.json()


async def test_aftersale_over_the_order_amount_is_400(client: Client) -> None:
    created = await new_order(client, qty=10)
    status, data = await open_aftersale(client, created["order_no"], "1990.01")
    assert status == 400
    assert data["error"] == "invalid_input" and "1990.00" in data["message"]
    assert await table(client, t.aftersales) == []


async def test_aftersale_above_the_auto_limit_waits_for_approval(client: Client) -> None:
    created = await new_order(client, qty=10)
    status, data = await open_aftersale(client, created["order_no"], "1500.00")
    assert status == 201
    assert (data["state"], data["label"], data["amount"]) == ("pending_approval", "待审批", "1500.00")
    assert data["order_no"] == created["order_no"]
    resp = await client.get(f"/api/v1/aftersales/{data['id']}", headers=AUTH)
    assert resp.status == 200
    fetched = await resp.json()
    assert (fetched["id"], fetched["state"], fetched["kind"]) == (data["id"], "pending_approval", "refund")
    assert fetched["history"][0]["to"] == "pending_approval"
    resp = await client.get(f"/api/v1/aftersales/{data['id'].lower()}", headers=AUTH)
    assert (await resp.json())["id"] == data["id"]


async def test_small_aftersale_approves_itself(client: Client) -> None:
    created = await new_order(client, qty=10)
    status, data = await open_aftersale(client, created["order_no"], "100.00")
    assert status == 201
    assert (data["state"], data["label"]) == ("approved", "已同意")
    [row] = await table(client, t.aftersales)
    assert (row["state"], row["amount_fen"]) == ("approved", 10_000)


@pytest.mark.parametrize(
    ("body", "field"),
    [({"kind": "gift", "amount": "1.00"}, "kind"), ({"kind": "refund", "amount": "-1"}, "amount")],
)
async def test_bad_aftersale_body_is_400_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    created = await new_order(client)
    resp = await client.post("/api/v1/aftersales", json={"order_no": created["order_no"], **body}, headers=AUTH)
    assert resp.status == 400
    assert field in (await resp.json())["message"]
    assert await table(client, t.aftersales) == []


async def test_unknown_aftersale_and_order_are_404(client: Client) -> None:
    resp = await client.get("/api/v1/aftersales/AS404", headers=AUTH)
    assert resp.status == 404 and "找不到售后单" in (await resp.json())["message"]
    status, data = await open_aftersale(client, "OB404", "1.00")
    assert status == 404 and "找不到订单" in data["message"]


# --- health and metrics ---


async def test_healthz_is_ok_without_a_token(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


async def test_metrics_exposes_the_anomaly_counter(client: Client) -> None:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    assert "orderbot_state_jump_anomalies_total" in await resp.text()
