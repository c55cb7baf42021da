"""One set of limits (domain/limits.py) on the REST API and on `orderbot orders import`: the same value is refused on
both paths with the same sentence, and every limit fits the column that stores the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String

from bot.cli import main
from domain import limits as lim
from integrations.db import tables as t
from tests.integration.test_api import AUTH, Client, order_body
from tests.integration.test_api import client as client  # noqa: F401  (the fixture)
from tests.integration.test_import import DOUYIN, orders_in, write_csv
from tests.integration.test_import import env as env  # noqa: F401  (the fixture)

LINE = {"sku": "BP-001", "qty": 1, "unit_price": "199.00", "name": "刹车片"}
GOOD_ROW = {"订单编号": "DY1", "买家ID": "C1", "收货人": "浦东4S店", "收货人手机号": "13800000000",
            "详细地址": "上海市浦东新区张杨路500号", "发货门店": "SH01", "商家编码": "BP-001", "商品名称": "刹车片",
            "商品数量": "1", "商品单价": "199.00", "订单状态": "待发货"}

# (REST body change, the field it names, the import column, the value, the limit that refuses it)
CASES: list[tuple[dict[str, Any], str, str, str, lim.Limit | lim.Range]] = [
    ({"external_id": "D" * 65}, "external_id", "订单编号", "D" * 65, lim.EXTERNAL_ID),
    ({"customer": {"platform_buyer_id": "B" * 129}}, "customer.platform_buyer_id", "买家ID", "B" * 129,
     lim.PLATFORM_BUYER),
    ({"customer": {"id": "C1", "name": "名" * 65}}, "customer.name", "收货人", "名" * 65, lim.CUSTOMER_NAME),
    ({"customer": {"id": "C1", "phone": "call me"}}, "customer.phone", "收货人手机号", "call me", lim.PHONE),
    ({"address": "路" * 501}, "address", "详细地址", "路" * 501, lim.ADDRESS),
    ({"address": "上海市浦东\x00新区"}, "address", "详细地址", "上海市浦东\x00新区", lim.ADDRESS),
    ({"store": "../etc"}, "store", "发货门店", "../etc", lim.STORE),
    ({"lines": [{**LINE, "sku": "BP 001"}]}, "lines.0.sku", "商家编码", "BP 001", lim.SKU),
    ({"lines": [{**LINE, "name": "片" * 129}]}, "lines.0.name", "商品名称", "片" * 129, lim.PRODUCT_NAME),
    ({"lines": [{**LINE, "qty": 10_001}]}, "lines.0.qty", "商品数量", "10001", lim.QTY),
    ({"lines": [{**LINE, "unit_price": "10000000000.00"}]}, "lines.0.unit_price", "商品单价", "10000000000.00",
     lim.UNIT_PRICE_FEN),
]
IDS = [f"{case[1]}-{i}" for i, case in enumerate(CASES)]


def reason(limit: lim.Limit | lim.Range, value: str) -> str:
    if isinstance(limit, lim.Range):
        scale = 100 if limit.unit == "fen" else 1
        found = limit.problem(int(float(value) * scale))
    else:
        found = limit.problem(value)
    assert found is not None
    return found


@pytest.mark.parametrize(("change", "field", "column", "value", "limit"), CASES, ids=IDS)
async def test_the_api_refuses_a_value_past_its_limit_with_the_limits_sentence(
    client: Client, change: dict[str, Any], field: str, column: str, value: str, limit: lim.Limit | lim.Range
) -> None:
    resp = await client.post("/api/v1/orders", json=order_body(**change), headers=AUTH)
    assert resp.status == 400
    data = await resp.json()
    assert {f["field"]: f["problem"] for f in data["fields"]} == {field: reason(limit, value)}


@pytest.mark.parametrize(("change", "field", "column", "value", "limit"), CASES, ids=IDS)
def test_the_import_refuses_the_same_value_with_the_same_sentence(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],  # noqa: F811
    change: dict[str, Any], field: str, column: str, value: str, limit: lim.Limit | lim.Range,
) -> None:
    row = {**GOOD_ROW, column: value}
    path = write_csv(tmp_path / "douyin.csv", DOUYIN, [[row[h] for h in DOUYIN]], "utf-8")
    assert main(["orders", "import", str(path), "--channel", "douyin"]) == 1
    assert f"第 2 行：{reason(limit, value)}" in capsys.readouterr().out
    assert orders_in(env) == []


def test_a_quantity_too_big_to_write_out_is_refused_at_once(env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    path = write_csv(tmp_path / "douyin.csv", DOUYIN, [[{**GOOD_ROW, "商品数量": "1e999999999"}[h] for h in DOUYIN]], "utf-8")
    assert main(["orders", "import", str(path), "--channel", "douyin"]) == 1
    assert f"第 2 行：{lim.QTY.problem(lim.QTY.high + 1)}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("limit", "column"),
    [
        (lim.CHANNEL, t.orders.c.channel), (lim.EXTERNAL_ID, t.orders.c.external_id), (lim.STORE, t.orders.c.store),
        (lim.STORE, t.inventory.c.store), (lim.STORE, t.users.c.store), (lim.SKU, t.inventory.c.sku),
        (lim.SKU, t.skus.c.sku), (lim.SKU, t.demand_signals.c.sku), (lim.CHANNEL, t.demand_signals.c.channel),
        (lim.PRODUCT_NAME, t.skus.c.name), (lim.CUSTOMER_ID, t.orders.c.customer_id),
        (lim.CUSTOMER_NAME, t.orders.c.customer_name), (lim.PHONE, t.orders.c.customer_phone),
        (lim.WAYBILL, t.orders.c.waybill), (lim.USERID, t.audit_log.c.actor), (lim.USERID, t.aftersales.c.requested_by),
        (lim.USERID, t.sku_freezes.c.lifted_by), (lim.AFTERSALE_NO, t.aftersales.c.aftersale_no),
    ],
    ids=lambda x: getattr(x, "label", None) or str(x),
)
def test_each_limit_is_the_length_of_its_column(limit: lim.Limit, column: Any) -> None:
    assert isinstance(column.type, String)
    assert limit.max_chars == column.type.length


def test_the_audit_keeps_what_a_subject_name_may_be() -> None:
    assert lim.AUDIT_ENTITY_ID_CHARS == t.audit_log.c.entity_id.type.length
