"""The console's scenario buttons: each drives a real path (REST API, courier push, bus) and names whose chat
shows the outcome. Mounted only by `orderbot demo` (bot/demo.py)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.console import CONSOLE, _own_callback_url
from bot.jsonio import error, ok
from bot.keys import BUS, DB, SETTINGS
from domain import commands as c
from domain.clock import utcnow
from handlers.safety_stock import policy_of
from integrations.db.uow import UnitOfWork
from integrations.fakes.courier import FakeCourier

COURIER = web.AppKey("demo_courier", FakeCourier)
CROWD = web.AppKey("demo_crowd", dict)  # end state -> order numbers (Seeded.crowd), taken one per click
SURGE_ORDERS = 15
SURGE_QTY = 8
routes = web.RouteTableDef()
_surge_runs = itertools.count(1)


def install(app: web.Application, courier: FakeCourier, crowd: dict[str, list[str]]) -> None:
    app[COURIER] = courier
    app[CROWD] = {state: list(nos) for state, nos in crowd.items()}
    app.add_routes(routes)


def _take(app: web.Application, state: str) -> str | None:
    left = app[CROWD].get(state) or []
    return left.pop(0) if left else None


async def _api(request: web.Request, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """Call this app's own REST API as an outside system would, with the demo's API token."""
    http = request.app[CONSOLE].http
    assert http is not None
    token = request.app[SETTINGS].api.token.get_secret_value()
    url = _own_callback_url(request).replace("/wecom/callback", path)
    async with http.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}) as answer:
        return answer.status, await answer.json()


@routes.post("/demo/api/scenario/address_change")
async def address_change(request: web.Request) -> web.Response:
    """A customer changes the address of an order the warehouse is picking: POST /api/v1/orders/{no}/address."""
    order_no = _take(request.app, "picking")
    if order_no is None:
        return error(409, "no_order_left", "没有拣货中的订单了，请重启演示。")
    status, body = await _api(request, "POST", f"/api/v1/orders/{order_no}/address",
                              {"address": "上海市静安区南京西路1266号恒隆广场28楼", "by": "customer"})
    if status != 200:
        return error(502, "scenario_failed", f"改地址失败（HTTP {status}）：{body}")
    store = body.get("store")
    return ok({"order_no": order_no, "watch": await _watchers(request, "warehouse", store) + ["fin1"],
               "summary": f"客户修改了拣货中订单 {order_no} 的收货地址：门店 {store} 仓管和财务收到推送。"})


@routes.post("/demo/api/scenario/courier_signed")
async def courier_signed(request: web.Request) -> web.Response:
    """The courier reports a packed (not yet shipped) parcel as signed: a signed Kuaidi100 push to
    /channels/kuaidi100/callback, which finds the conflict as the push arrives (the logistics sweep is the backstop)."""
    order_no = _take(request.app, "packed")
    if order_no is None:
        return error(409, "no_order_left", "没有待出库的订单了，请重启演示。")
    async with UnitOfWork(request.app[DB]) as uow:
        found = await uow.orders.get(order_no)
    assert found is not None and found.waybill
    salt = request.app[SETTINGS].logistics.salt.get_secret_value()
    now = utcnow()
    answer = await request.app[COURIER].push(
        found.waybill, "3", [(now - timedelta(minutes=30), "快件已揽收"), (now, "已签收，签收人：前台代收")],
        callback_url=_own_callback_url(request).replace("/wecom/callback", "/channels/kuaidi100/callback"),
        salt=salt,
    )
    if answer.status_code != 200:
        return error(502, "scenario_failed", f"快递推送被拒绝（HTTP {answer.status_code}）")
    async with UnitOfWork(request.app[DB]) as uow:
        flagged = await uow.incidents.orders_with_open("logistics_conflict", [order_no])
    return ok({"order_no": order_no, "waybill": found.waybill, "conflicts": len(flagged),
               "watch": await _watchers(request, "supervisor", None),
               "summary": f"快递推送：待出库订单 {order_no}（运单 {found.waybill}）显示已签收；推送一到即发现冲突，"
                          "主管收到物流冲突卡片，客户结算暂停。"})


@routes.post("/demo/api/scenario/brake_surge")
async def brake_surge(request: web.Request) -> web.Response:
    """A live broadcast sells the front brake pads: many Douyin orders on one SKU through POST /api/v1/orders,
    more than the stores hold; then the safety-stock evaluation (the hourly job) runs."""
    run = next(_surge_runs)
    created: list[str] = []
    short: list[str] = []
    for i in range(1, SURGE_ORDERS + 1):
        status, body = await _api(request, "POST", "/api/v1/orders", {
            "channel": "douyin", "external_id": f"DY-SURGE-{run:02d}-{i:03d}", "paid": True,
            "customer": {"id": f"C-DY-S{i:03d}", "name": f"抖音买家{i}", "phone": f"1370000{i:04d}"},
            "address": f"上海市浦东新区张杨路{100 + i}号",
            "lines": [{"sku": "BP-001", "qty": SURGE_QTY, "unit_price": 280, "name": "刹车片（前轮）"}],
        })
        if status not in (200, 201):
            return error(502, "scenario_failed", f"下单失败（HTTP {status}）：{body}")
        created.append(body["order_no"])
        if body.get("state") == "paid":
            short.append(body["order_no"])
    settings = request.app[SETTINGS]
    report = await request.app[BUS].handle(c.EvaluateSafetyStock(policy_of(**settings.safety_stock.model_dump())))
    return ok({"orders": created, "out_of_stock": short, "safety_stock": str(report),
               "watch": await _watchers(request, "supervisor", None) + ["buyer1"],
               "summary": f"直播爆单：{len(created)} 单刹车片（每单 {SURGE_QTY} 套），{len(short)} 单缺货，"
                          "主管收到缺货提醒；安全库存评估已运行。"})


async def _watchers(request: web.Request, role: str, store: str | None) -> list[str]:
    async with UnitOfWork(request.app[DB]) as uow:
        users = await uow.users.list()
    return sorted(u.userid for u in users if role in u.roles and (store is None or u.store == store))

