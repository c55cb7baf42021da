"""WeChat's 发货信息录入 (upload_shipping_info): a shipped mini-program order's waybill goes to WeChat, which shows it to
the buyer and releases the payment. Outbox channel "channel_ship", kind "miniprogram" (domain/outbox_systems.py).

Followed (developers.weixin.qq.com/miniprogram/dev/server/API/order_shipping/api_uploadshippinginfo and
…/platform-capabilities/business-capabilities/order-shipping/order-shipping.html):
- POST /wxa/sec/order/upload_shipping_info?access_token=… with order_key {order_number_type 1, mchid, out_trade_no}
  (or 2 with transaction_id), logistics_type 1 (快递), delivery_mode 1 (UNIFIED_DELIVERY), shipping_list [{tracking_no,
  express_company (get_delivery_list's id), item_desc, contact {receiver_contact, masked}}], upload_time (RFC 3339),
  payer {openid}. Answer {"errcode": 0, "errmsg": "ok"}.
- Uploading again for a shipped payment is a 重新发货, allowed once; after that 10060003 支付单已使用重新发货机会.
  So a retry (a try before may have reached WeChat) first asks POST /wxa/sec/order/get_order: order_state 2 已发货,
  3 确认收货 or 4 交易完成 means done — the one re-ship is not spent on our own time-out. 10060003 is success too;
  10060004 (不可发货的状态) is success when get_order says shipped, else final (e.g. refunded, 5).
- The access token comes from POST /cgi-bin/stable_token (grant_type client_credential): unlike cgi-bin/token it does
  not void the token another backend of the same mini-program holds. Kept in the shared token store; 40001, 40014 and
  42001 refuse it (fetched again once). -1 (busy) and 45009 (quota), HTTP 5xx and time-outs are retried; every other
  errcode (10060001 支付单不存在, 47001 data format error …) is final and reaches customer service with WeChat's words.

Assumptions, written down: orderbot does not store WeChat Pay's transaction_id (WeChat Pay's notification is not wired
in), so the order is named by mchid (MINIPROGRAM__MCH_ID) and out_trade_no = the order's external id (the number the
app sends with the order, taken to be the out_trade_no it paid with). express_company ids are those of
get_delivery_list for the chain's couriers (EXPRESS_CODES; MINIPROGRAM__EXPRESS_CODES adds or corrects them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from domain.clock import utcnow
from integrations.channels.shipments import our_courier
from integrations.delivery.rows import OutboxRow, PermanentDelivery, RetryableDelivery
from integrations.tokens import TokenCache, TokenKeeper

log = logging.getLogger(__name__)

UPLOAD_PATH = "/wxa/sec/order/upload_shipping_info"
ORDER_PATH = "/wxa/sec/order/get_order"
TOKEN_PATH = "/cgi-bin/stable_token"
TOKEN_REFUSED = frozenset({40001, 40014, 42001})
RETRY = frozenset({-1, 45009})
REUSED_RESHIP, NOT_SHIPPABLE = 10060003, 10060004
SHIPPED_STATES = frozenset({2, 3, 4})  # 已发货, 确认收货, 交易完成
EXPRESS_CODES: dict[str, str] = {  # our courier code (Kuaidi100's) → WeChat's delivery_id
    "shunfeng": "SF", "jd": "JD", "yuantong": "YTO", "zhongtong": "ZTO", "yunda": "YD", "shentong": "STO",
    "ems": "EMS", "jtexpress": "JTSD",
}
BEIJING = timezone(timedelta(hours=8))


class WeChatError(Exception):
    def __init__(self, errcode: int | None, errmsg: str) -> None:
        super().__init__(f"wechat errcode {errcode}: {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg

    @property
    def retry(self) -> bool:
        return self.errcode is None or self.errcode in RETRY


class _TokenRefused(WeChatError):
    pass


class WeChatShippingClient:
    def __init__(self, http: httpx.AsyncClient, *, api_base: str, app_id: str, secret: str, token_cache: TokenCache,
                 clock: Callable[[], float] = time.time) -> None:
        self._http, self._base = http, api_base.rstrip("/")
        self._app_id, self._secret = app_id, secret
        self._tokens = TokenKeeper(token_cache, f"wxmini:{app_id}", self._fetch_token, refused=_TokenRefused,
                                   clock=clock)

    async def upload_shipping_info(self, body: dict[str, Any]) -> None:
        await self._call(UPLOAD_PATH, body)

    async def order_state(self, mchid: str, out_trade_no: str) -> int:
        answer = await self._call(ORDER_PATH, {"merchant_id": mchid, "merchant_trade_no": out_trade_no})
        order = answer.get("order")
        return int(order.get("order_state") or 0) if isinstance(order, dict) else 0

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self._tokens.call(lambda token: self._post(path, body, token))
        except _TokenRefused as refused:
            raise WeChatError(None, "fresh access token refused: " + refused.errmsg) from refused

    async def _post(self, path: str, body: dict[str, Any], token: str | None) -> dict[str, Any]:
        params = {"access_token": token} if token is not None else None
        try:
            response = await self._http.post(self._base + path, params=params, json=body)
        except httpx.TransportError as err:
            raise WeChatError(None, f"{path}: {type(err).__name__}") from err
        if response.status_code >= 500 or response.status_code == 429:
            raise WeChatError(None, f"{path}: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError as err:
            raise WeChatError(None, f"{path}: answer is not JSON (HTTP {response.status_code})") from err
        if not isinstance(answer, dict):
            raise WeChatError(None, f"{path}: answer is not a JSON object")
        errcode = int(answer.get("errcode") or 0)
        if errcode:
            cls = _TokenRefused if errcode in TOKEN_REFUSED and token is not None else WeChatError
            raise cls(errcode, str(answer.get("errmsg", "")))
        return answer

    async def _fetch_token(self) -> tuple[str, float]:
        answer = await self._post(TOKEN_PATH, {"grant_type": "client_credential", "appid": self._app_id,
                                               "secret": self._secret, "force_refresh": False}, None)
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeChatError(None, "stable_token answer has no access_token")
        return token, float(answer.get("expires_in") or 7200)


def rfc3339(at: datetime) -> str:
    """2026-11-30T20:31:05.120+08:00 (a naive time is UTC)."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(BEIJING).isoformat(timespec="milliseconds")


class MiniprogramShippingUpload:
    def __init__(self, client: WeChatShippingClient, *, mch_id: str, express_codes: Mapping[str, str] | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._client, self._mch_id, self._clock = client, mch_id, clock
        self._codes = {**EXPRESS_CODES, **(express_codes or {})}

    def body(self, row: OutboxRow) -> dict[str, Any]:
        p = row.payload
        waybill, courier = str(p.get("waybill", "")), our_courier(row)
        express = self._codes.get(courier, "")
        if not express:
            raise PermanentDelivery(f"快递公司 {courier or '未知（运单号前缀不认识）'} 没有对应的微信物流公司编码"
                                    f"（ORDERBOT_MINIPROGRAM__EXPRESS_CODES），运单 {waybill}")
        if not p.get("payer"):
            raise PermanentDelivery("订单的买家没有小程序 openid，无法录入微信发货信息")
        if "#" in str(p.get("external_id", "")):
            raise PermanentDelivery(f"拆单子订单（{p.get('external_id')}）需在小程序后台按分拆发货录入运单 {waybill}")
        shipping: dict[str, Any] = {"tracking_no": waybill, "express_company": express,
                                    "item_desc": str(p.get("item_desc") or "商品")}
        if p.get("receiver_phone"):
            shipping["contact"] = {"receiver_contact": str(p["receiver_phone"])}
        return {
            "order_key": {"order_number_type": 1, "mchid": self._mch_id, "out_trade_no": str(p["external_id"])},
            "logistics_type": 1, "delivery_mode": 1, "shipping_list": [shipping],
            "upload_time": rfc3339(self._clock()),
            "payer": {"openid": str(p["payer"])},
        }

    async def deliver(self, row: OutboxRow) -> None:
        body = self.body(row)
        try:
            await self._upload(row, body, str(body["order_key"]["out_trade_no"]))
        except WeChatError as err:
            if err.retry:
                raise RetryableDelivery(str(err)) from err
            raise PermanentDelivery(f"微信拒绝发货信息录入：{err.errcode} {err.errmsg}") from err

    async def _upload(self, row: OutboxRow, body: dict[str, Any], out_trade_no: str) -> None:
        if row.attempts and await self._shipped(out_trade_no):
            log.info("mini-program order %s is shipped at WeChat already: taken as uploaded", out_trade_no)
            return
        try:
            await self._client.upload_shipping_info(body)
        except WeChatError as err:
            if err.errcode == REUSED_RESHIP or (err.errcode == NOT_SHIPPABLE and await self._shipped(out_trade_no)):
                log.info("mini-program order %s was shipped already (%s): taken as uploaded", out_trade_no, err.errcode)
                return
            raise
        log.info("mini-program order %s: shipping info uploaded (%s)", out_trade_no, body["shipping_list"][0]["tracking_no"])

    async def _shipped(self, out_trade_no: str) -> bool:
        try:
            return await self._client.order_state(self._mch_id, out_trade_no) in SHIPPED_STATES
        except WeChatError as err:
            if err.retry:
                raise
            return False
