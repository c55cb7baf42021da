"""The wire of channels told back, request by request: Douyin's order.logisticsAdd signed as the SDK signs it, WeChat's
stable_token and upload_shipping_info bodies, and how each platform answer becomes an outbox outcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from integrations.channels.douyin.client import DouyinClient, DouyinRejected, DouyinRetryable
from integrations.channels.douyin.shipping import DouyinShipConfirm
from integrations.channels.douyin.signature import api_sign
from integrations.channels.miniprogram.shipping import (
    MiniprogramShippingUpload,
    WeChatShippingClient,
    rfc3339,
)
from integrations.delivery.rows import OutboxRow, PermanentDelivery, RetryableDelivery
from integrations.tokens import MemoryTokenCache

NOW = datetime(2026, 11, 30, 12, 31, 5, 120_000, tzinfo=UTC)


def row(kind: str, external_id: str, waybill: str = "SF1234567890", attempts: int = 0, **payload: str) -> OutboxRow:
    data = {"order_no": "SO1", "external_id": external_id, "waybill": waybill, "courier": "", "item_desc": "刹车片×2",
            "payer": "o-1", "receiver_phone": "138****0000", **payload}
    return OutboxRow(1, "channel_ship", kind, f"{kind}:{external_id}", data, attempts, NOW)


async def test_logistics_add_is_posted_signed_with_sorted_param_json() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": 10000, "msg": "success", "data": {}})

    cache = MemoryTokenCache()
    await cache.put("douyin:AK:4463798", "tok", 2e9)
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = DouyinClient(http, api_base="https://gw.test", app_key="AK", app_secret="SK", shop_id="4463798",
                              token_cache=cache, clock=lambda: 1_764_500_000)
        await DouyinShipConfirm(client).deliver(row("douyin", "6920000000000000001", "YT7407032196699"))

    [request] = seen
    body = request.content.decode()
    assert request.url.path == "/order/logisticsAdd"
    assert body == '{"company_code":"yuantong","logistics_code":"YT7407032196699","order_id":"6920000000000000001"}'
    q = request.url.params
    assert (q["method"], q["v"], q["sign_method"], q["access_token"]) == ("order.logisticsAdd", "2", "hmac-sha256", "tok")
    assert q["sign"] == api_sign("AK", "SK", "order.logisticsAdd", body, "1764500000")


class Refusing:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls: list[dict[str, Any]] = []

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(params)
        raise self.error


async def test_douyin_answers_become_outcomes() -> None:
    shipped = DouyinRejected(50002, "订单已发货，不允许再次执行发货。", "isv.business-failed:60110")
    await DouyinShipConfirm(Refusing(shipped)).deliver(row("douyin", "1"))  # already shipped: success

    busy = DouyinRejected(50002, "系统繁忙，请稍后重试。", "isv.business-failed:60114")
    with pytest.raises(RetryableDelivery):
        await DouyinShipConfirm(Refusing(busy)).deliver(row("douyin", "1"))
    with pytest.raises(RetryableDelivery):
        await DouyinShipConfirm(Refusing(DouyinRetryable(20000, "系统错误"))).deliver(row("douyin", "1"))

    refund = DouyinRejected(50002, "发货订单中有退款申请需要处理，请先处理。", "isv.business-failed:60040")
    with pytest.raises(PermanentDelivery, match="发货订单中有退款申请需要处理"):
        await DouyinShipConfirm(Refusing(refund)).deliver(row("douyin", "1"))


async def test_douyin_courier_codes_child_orders_and_overrides() -> None:
    caller = Refusing(DouyinRejected(50002, "x", "isv.business-failed:60110"))
    with pytest.raises(PermanentDelivery, match="没有对应的抖店物流公司编码"):
        await DouyinShipConfirm(caller).deliver(row("douyin", "1", "QX123"))
    with pytest.raises(PermanentDelivery, match="拆单子订单"):
        await DouyinShipConfirm(caller).deliver(row("douyin", "1#2"))
    assert caller.calls == []  # nothing sent for either
    await DouyinShipConfirm(caller, {"zhaijisong": "zjs"}).deliver(row("douyin", "1", "QX1", courier="zhaijisong"))
    assert caller.calls == [{"order_id": "1", "company_code": "zjs", "logistics_code": "QX1"}]


def test_the_upload_body_names_the_payment_by_merchant_and_out_trade_no() -> None:
    upload = MiniprogramShippingUpload(None, mch_id="1900000109", clock=lambda: NOW)  # type: ignore[arg-type]
    assert upload.body(row("miniprogram", "MP1", "JDV1387492735")) == {
        "order_key": {"order_number_type": 1, "mchid": "1900000109", "out_trade_no": "MP1"},
        "logistics_type": 1, "delivery_mode": 1,
        "shipping_list": [{"tracking_no": "JDV1387492735", "express_company": "JD", "item_desc": "刹车片×2",
                           "contact": {"receiver_contact": "138****0000"}}],
        "upload_time": "2026-11-30T20:31:05.120+08:00", "payer": {"openid": "o-1"},
    }
    assert rfc3339(datetime(2026, 1, 1)) == "2026-01-01T08:00:00.000+08:00"  # naive is UTC
    with pytest.raises(PermanentDelivery, match="openid"):
        upload.body(row("miniprogram", "MP1", payer=""))


async def test_wechat_token_comes_from_stable_token_and_a_refused_one_is_replaced() -> None:
    seen: list[tuple[str, dict[str, Any], str]] = []
    tokens = iter(["t1", "t2"])

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        seen.append((request.url.path, body, request.url.params.get("access_token", "")))
        if request.url.path == "/cgi-bin/stable_token":
            return httpx.Response(200, json={"access_token": next(tokens), "expires_in": 7200})
        if request.url.params["access_token"] == "t1":
            return httpx.Response(200, json={"errcode": 40001, "errmsg": "invalid credential"})
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = WeChatShippingClient(http, api_base="https://wx.test", app_id="wxAPP", secret="SEC",
                                      token_cache=MemoryTokenCache())
        await MiniprogramShippingUpload(client, mch_id="M", clock=lambda: NOW).deliver(row("miniprogram", "MP1"))

    assert [(path, token) for path, _, token in seen] == [
        ("/cgi-bin/stable_token", ""), ("/wxa/sec/order/upload_shipping_info", "t1"),
        ("/cgi-bin/stable_token", ""), ("/wxa/sec/order/upload_shipping_info", "t2")]
    assert seen[0][1] == {"grant_type": "client_credential", "appid": "wxAPP", "secret": "SEC", "force_refresh": False}
