"""Hostile input to the REST API, one class at a time: each answers a 4xx with a clear message, stores nothing and
logs nothing at ERROR (on SQLite and PostgreSQL; PostgreSQL is the one that rejects NUL and overlong values)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from bot.keys import BUS, DB
from domain import commands as c
from integrations.db import tables as t
from tests.integration.api_hostile import counts, raw_request, statements
from tests.integration.test_api import AUTH, TOKEN, Client, add_store, order_body, table
from tests.integration.test_api import client as client  # noqa: F401  (the fixture)

JSON = {**AUTH, "Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.INFO)
    yield
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def refused(client: Client, method: str, path: str, status: int, **kw: Any) -> dict[str, Any]:
    """Send, expect `status` with a JSON {error, message}, and nothing stored."""
    before = await counts(client.app[DB])
    resp = await client.request(method, path, **kw)
    assert resp.status == status, await resp.text()
    data: dict[str, Any] = await resp.json()
    assert data["error"] and data["message"]
    assert await counts(client.app[DB]) == before
    return data


# --- the body: media type, charset, encoding, nesting ---


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", None])
async def test_json_in_any_other_media_type_is_415(client: Client, content_type: str | None) -> None:
    headers = {**AUTH, "Content-Type": content_type} if content_type else AUTH
    data = await refused(client, "POST", "/api/v1/orders", 415, data=json.dumps(order_body()).encode(), headers=headers)
    assert data["error"] == "unsupported_media_type" and "application/json" in data["message"]


@pytest.mark.parametrize("charset", ["klingon", "latin-1", "utf-16"])
async def test_a_charset_other_than_utf8_is_415(client: Client, charset: str) -> None:
    headers = {**AUTH, "Content-Type": f"application/json; charset={charset}"}
    data = await refused(client, "POST", "/api/v1/orders", 415, data=json.dumps(order_body()).encode(), headers=headers)
    assert data["error"] == "unsupported_charset"
    resp = await client.post("/api/v1/orders", data=json.dumps(order_body()).encode(),
                             headers={**AUTH, "Content-Type": "application/json; charset=UTF-8"})
    assert resp.status == 201


@pytest.mark.parametrize("depth", [17, 5_000, 30_000])
async def test_deeply_nested_json_is_400(client: Client, depth: int) -> None:
    body = b'{"channel": ' + b"[" * depth + b"]" * depth + b"}"
    data = await refused(client, "POST", "/api/v1/orders", 400, data=body, headers=JSON)
    assert data["error"] == "invalid_json"


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": "\xc3\x28"}', b'{"a": 1' + b"0" * 5000 + b"}"])
async def test_what_json_does_not_allow_is_400(client: Client, raw: bytes) -> None:
    assert (await refused(client, "POST", "/api/v1/orders", 400, data=raw, headers=JSON))["error"] == "invalid_json"


# --- the body: fields ---


async def test_an_unknown_field_is_400_naming_it_and_paid_must_be_given(client: Client) -> None:
    body = order_body(Paid=False)
    del body["paid"]
    data = await refused(client, "POST", "/api/v1/orders", 400, json=body, headers=AUTH)
    assert "Paid" in data["message"] and "paid" in [f["field"] for f in data["fields"]]
    assert {f["field"]: f["problem"] for f in data["fields"]} == {"Paid": "未知字段", "paid": "缺少此字段"}
    data = await refused(client, "POST", "/api/v1/orders", 400, json=order_body(paid="false"), headers=AUTH)
    assert [f["field"] for f in data["fields"]] == ["paid"]
    nested = order_body(customer={"id": "C1", "vip": True})
    data = await refused(client, "POST", "/api/v1/orders", 400, json=nested, headers=AUTH)
    assert [f["field"] for f in data["fields"]] == ["customer.vip"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/orders", order_body(address="上海市浦东新区\x00张杨路500号"), "address"),
        ("/api/v1/orders", order_body(customer={"id": "C1", "name": "浦东\x004S店"}), "customer.name"),
        ("/api/v1/orders", order_body(lines=[{"sku": "BP\x00", "qty": 1, "unit_price": "1.00"}]), "lines.0.sku"),
        ("/api/v1/orders", order_body(external_id="DY\x001"), "external_id"),
        ("/api/v1/aftersales", {"order_no": "OB1", "kind": "refund", "amount": "1", "reason": "坏\x00了"}, "reason"),
        ("/api/v1/demand-signals", {"sku": "BP-001", "channel": "dy\x00", "kind": "cart_add", "value": 1}, "channel"),
        ("/api/v1/skus/BP-001/unfreeze", {"by": "cg\x001"}, "by"),
    ],
)
async def test_a_nul_character_in_any_field_is_400_naming_it(client: Client, path: str, body: Any, field: str) -> None:
    data = await refused(client, "POST", path, 400, json=body, headers=AUTH)
    assert [f["field"] for f in data["fields"]] == [field] and "非法字符" in data["fields"][0]["problem"]


async def test_a_lone_surrogate_is_400(client: Client) -> None:
    raw = json.dumps(order_body(address="上海市浦东新区\ud800张杨路500号")).encode()
    data = await refused(client, "POST", "/api/v1/orders", 400, data=raw, headers=JSON)
    assert [f["field"] for f in data["fields"]] == ["address"]


# --- path parameters ---


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/api/v1/orders/OB%00", "order_no"),
        ("GET", "/api/v1/orders/" + "A" * 65, "order_no"),
        ("POST", "/api/v1/orders/OB%001/address", "order_no"),
        ("POST", "/api/v1/orders/OB%0A1/trigger", "order_no"),
        ("GET", "/api/v1/aftersales/AS%00", "aftersale_no"),
        ("GET", "/api/v1/inventory/SH01/BP%00", "sku"),
        ("PUT", "/api/v1/inventory/SH%0001/BP-001", "store"),
        ("PUT", "/api/v1/skus/" + "B" * 65, "sku"),
        ("POST", "/api/v1/skus/BP%20001/unfreeze", "sku"),
    ],
)
async def test_a_bad_path_parameter_is_400_before_the_database(client: Client, method: str, path: str, field: str) -> None:
    with statements(client.app[DB]) as seen:
        data = await refused(client, method, path, 400, json={"on_hand": 1}, headers=AUTH)
    assert data["error"] == "invalid_path" and data["field"] == field
    assert [s for s in seen if "count" not in s] == []  # only refused()'s own counting ran


@pytest.mark.parametrize("store", ["..%2Fetc", "..%2F..%2Fetc", "%2E%2E%2Fetc", "SH01%2F..", "SH 01", "上海一店"])
async def test_stock_for_a_store_code_that_is_not_a_code_is_refused(client: Client, store: str) -> None:
    data = await refused(client, "PUT", f"/api/v1/inventory/{store}/x", 400, json={"on_hand": 1}, headers=AUTH)
    assert data["field"] == "store" and "门店编号" in data["message"]
    assert await table(client, t.inventory) == []


async def test_stock_only_for_a_store_that_exists(client: Client) -> None:
    data = await refused(client, "PUT", "/api/v1/inventory/SH99/BP-001", 404, json={"on_hand": 1}, headers=AUTH)
    assert "SH99" in data["message"]
    await add_store(client.app, "SH99")  # somebody works there now
    assert (await client.put("/api/v1/inventory/SH99/BP-001", json={"on_hand": 1}, headers=AUTH)).status == 200
    await client.app[BUS].handle(c.SetStock("HZ01", "BP-001", 5, by="k3", via="api"))  # stock from elsewhere
    assert (await client.put("/api/v1/inventory/HZ01/OF-002", json={"on_hand": 1}, headers=AUTH)).status == 200


@pytest.mark.parametrize("sku", ["BP 001", "..%2Fx", "刹车片", "BP-001;drop"])
async def test_a_sku_that_is_not_a_code_is_refused(client: Client, sku: str) -> None:
    data = await refused(client, "PUT", f"/api/v1/inventory/SH01/{sku}", 400, json={"on_hand": 1}, headers=AUTH)
    assert data["field"] == "sku"
    body = order_body(lines=[{"sku": sku.replace("%2F", "/"), "qty": 1, "unit_price": "1.00"}])
    data = await refused(client, "POST", "/api/v1/orders", 400, json=body, headers=AUTH)
    assert [f["field"] for f in data["fields"]] == ["lines.0.sku"]


async def test_the_longest_store_and_sku_are_stored_and_audited(client: Client) -> None:
    store, sku = "S" * 32, "K" * 64
    await add_store(client.app, store)
    resp = await client.put(f"/api/v1/inventory/{store}/{sku}", json={"on_hand": 3}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    [audit] = await table(client, t.audit_log, t.audit_log.c.action == "set_stock")
    assert audit["entity_id"] == f"{store}/{sku}"[:64]


# --- the Authorization header ---


@pytest.mark.parametrize("value", [b"Bearer \xff\xfe", b"\xc3\x28", b"Bearer " + TOKEN.encode() + b"\x80"])
async def test_an_authorization_header_that_is_not_utf8_is_4xx_without_the_database(client: Client, value: bytes) -> None:
    server = client.server
    before = await counts(client.app[DB])
    with statements(client.app[DB]) as seen:
        status, body = await raw_request(
            str(server.host), int(server.port or 0),
            b"PUT /api/v1/inventory/SH01/BP-001 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: " + value, b'{"on_hand": 1}',
        )
    assert status == 400 and json.loads(body)["error"] == "invalid_header"
    assert seen == []
    assert await counts(client.app[DB]) == before
