"""Douyin's ship-confirm (order.logisticsAdd): a shipped Douyin order's waybill goes back to the shop, so the buyer
sees the tracking in the Douyin app. Outbox channel "channel_ship", kind "douyin" (domain/outbox_systems.py
ChannelShipment).

Followed (doudian SDK, sdk_golang api/order_logisticsAdd/request, and its published return codes as in
sevencat/ecommerce_sdk ecommerce_sdk/douyin/OrderLogisticsAdd.cs):
- POST /order/logisticsAdd, signed like every open API call (client.py); params order_id (the parent order id:
  "暂时只支持整单出库，即接口调用时入参只能传父订单号"), company_code (from /order/logisticsCompanyList; the
  numeric logistics_id is deprecated), logistics_code (the waybill number). Success is code 10000, data {}.
- 50002 with sub_code isv.business-failed:60110 "订单已发货，不允许再次执行发货。": the order is shipped already —
  a re-send after a time-out whose first try went through. Taken as success.
- 20000 (isp.service-error:*) and the 50002 sub-codes that say 系统繁忙 (60114, 60121, 60125, 70009, 120018,
  120032) may pass later: retried. Every other refusal (60021 cancelled, 60040 refund pending, 60017 bad waybill,
  60018 courier not supported, 70022 waybill used by another order …) is final and reaches customer service with
  Douyin's own words.

Assumptions, written down: the company codes of /order/logisticsCompanyList for the couriers the chain uses are the
ones in COMPANY_CODES (they match Kuaidi100's codes; seen in public ERP code, e.g. zhowdom/whale-admin-web
src/utils/mss.js — not checked against the live list), and DOUYIN__COMPANY_CODES adds or corrects codes without a
release. A child of a split order (external id "…#2") cannot be confirmed by logisticsAdd, which ships whole orders
only (logisticsAddMultiPack would be needed): it becomes a task for customer service to confirm in 抖店 by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from integrations.channels.douyin.client import DouyinRejected, DouyinRetryable
from integrations.channels.shipments import our_courier
from integrations.delivery.rows import OutboxRow, PermanentDelivery, RetryableDelivery

log = logging.getLogger(__name__)

METHOD = "order.logisticsAdd"
ALREADY_SHIPPED = "60110"
BUSY = frozenset({"60114", "60121", "60125", "70009", "120018", "120032"})
COMPANY_CODES: dict[str, str] = {  # our courier code (Kuaidi100's) → Douyin's company_code
    "shunfeng": "shunfeng", "jd": "jd", "yuantong": "yuantong", "zhongtong": "zhongtong", "yunda": "yunda",
    "shentong": "shentong", "ems": "ems", "jtexpress": "jtexpress", "youzhengguonei": "youzhengguonei",
    "debangkuaidi": "debangkuaidi",
}


class DouyinCaller(Protocol):
    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]: ...


def sub_number(sub_code: str) -> str:
    """"isv.business-failed:60110" → "60110"."""
    return sub_code.rsplit(":", 1)[-1]


def ship_params(order_id: str, company_code: str, waybill: str) -> dict[str, Any]:
    return {"order_id": order_id, "company_code": company_code, "logistics_code": waybill}


class DouyinShipConfirm:
    def __init__(self, client: DouyinCaller, company_codes: Mapping[str, str] | None = None) -> None:
        self._client = client
        self._codes = {**COMPANY_CODES, **(company_codes or {})}

    async def deliver(self, row: OutboxRow) -> None:
        order_id, waybill = str(row.payload.get("external_id", "")), str(row.payload.get("waybill", ""))
        if "#" in order_id:
            raise PermanentDelivery(f"拆单子订单（{order_id}）不能用 order.logisticsAdd 整单发货，请在抖店后台按包裹录入运单 {waybill}")
        courier = our_courier(row)
        company = self._codes.get(courier, "")
        if not company:
            raise PermanentDelivery(f"快递公司 {courier or '未知（运单号前缀不认识）'} 没有对应的抖店物流公司编码"
                                    f"（ORDERBOT_DOUYIN__COMPANY_CODES），运单 {waybill}")
        try:
            await self._client.call(METHOD, ship_params(order_id, company, waybill))
        except DouyinRejected as err:
            number = sub_number(err.sub_code)
            if number == ALREADY_SHIPPED:
                log.info("douyin order %s was already shipped (60110): taken as confirmed", order_id)
                return
            if number in BUSY:
                raise RetryableDelivery(f"抖店繁忙：{err.message}") from err
            raise PermanentDelivery(f"抖店拒绝发货回传：{err.message}") from err
        except DouyinRetryable as err:
            raise RetryableDelivery(str(err)) from err
        log.info("douyin order %s confirmed shipped with %s %s", order_id, company, waybill)
