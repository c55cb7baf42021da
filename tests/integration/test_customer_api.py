"""One customer through the REST API: `customer.id` optional, the buyer found by phone or OpenID."""

from __future__ import annotations

from typing import Any

from integrations.db import tables as t
from tests.integration.test_api import AUTH, Client, client, order_body, put_stock, table  # noqa: F401

__all__ = ["client"]


async def post(client: Client, external_id: str, customer: dict[str, Any], channel: str = "douyin") -> dict[str, Any]:  # noqa: F811
    resp = await client.post("/api/v1/orders", json=order_body(external_id, customer=customer, channel=channel),
                             headers=AUTH)
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def test_an_order_without_customer_id_is_accepted_and_matched_by_phone_or_openid(client: Client) -> None:  # noqa: F811
    await put_stock(client, 100)
    first = await post(client, "DY1", {"name": "张三", "phone": "138 0013 8000"})
    second = await post(client, "MP1", {"name": "张三", "phone": "+86 13800138000", "openid": "oAbc123"},
                        channel="miniprogram")
    third = await post(client, "MP2", {"openid": "oAbc123"}, channel="miniprogram")
    ids = {first["customer"]["id"], second["customer"]["id"], third["customer"]["id"]}
    assert len(ids) == 1 and ids.pop().startswith("C0")
    keys = {(r["kind"], r["value"]) for r in await table(client, t.customer_keys)}
    assert keys == {("phone", "+8613800138000"), ("openid", "oAbc123")}


async def test_an_order_naming_nobody_gets_a_guest_customer_of_its_own(client: Client) -> None:  # noqa: F811
    await put_stock(client, 100)
    a = await post(client, "DY1", {})
    b = await post(client, "DY2", {"name": "李四"})
    assert a["customer"]["id"] != b["customer"]["id"]
    assert len(await table(client, t.customers)) == 2


async def test_a_bad_phone_is_no_key_but_the_order_goes_on(client: Client) -> None:  # noqa: F811
    await put_stock(client, 100)
    a = await post(client, "DY1", {"name": "王五", "phone": "12345"})
    assert a["warnings"] == ["手机号 12345 无效，未用来识别客户。"]
    b = await post(client, "DY2", {"name": "王五", "phone": "12345"})
    assert a["customer"]["id"] != b["customer"]["id"]  # a number that is no mobile names nobody
    assert await table(client, t.customer_keys) == []
    refused = [r for r in await table(client, t.audit_log) if r["action"] == "customer_key"]
    assert [r["reason"] for r in refused] == ["手机号 12345 无效，未用来识别客户。"] * 2


async def test_an_explicit_id_still_works_and_its_keys_attach_to_it(client: Client) -> None:  # noqa: F811
    await put_stock(client, 100)
    await post(client, "K1", {"id": "K3-0001", "name": "浦东4S店", "phone": "13800138000"}, channel="k3")
    later = await post(client, "DY9", {"phone": "13800138000"})
    assert later["customer"]["id"] == "K3-0001"


async def test_platform_buyer_id_of_another_channel_is_refused(client: Client) -> None:  # noqa: F811
    resp = await client.post("/api/v1/orders", headers=AUTH, json=order_body(
        "X1", channel="shop", customer={"platform_buyer_id": "b1"}))
    assert resp.status == 400
    assert "platform_buyer_id" in (await resp.json())["message"]
    assert await table(client, t.orders) == []


async def test_get_order_lists_the_customers_other_orders(client: Client) -> None:  # noqa: F811
    await put_stock(client, 100)
    first = await post(client, "DY1", {"phone": "13800138000"})
    await post(client, "MP1", {"phone": "13800138000", "openid": "o1"}, channel="miniprogram")
    resp = await client.get("/api/v1/orders/MP1", headers=AUTH)
    others = (await resp.json())["customer"]["other_orders"]
    assert others == {"total": 1, "orders": [
        {"order_no": first["order_no"], "channel": "douyin", "state": "split", "label": "已拆单"}]}


async def test_a_customer_id_past_its_limit_is_refused(client: Client) -> None:  # noqa: F811
    resp = await client.post("/api/v1/orders", headers=AUTH, json=order_body("X1", customer={"id": "C" * 65}))
    assert resp.status == 400
    assert [f["field"] for f in (await resp.json())["fields"]] == ["customer.id"]
    assert await table(client, t.orders) == []
