"""The REST API under /api/v1: bearer token, JSON in and out, 4xx with a message for every refusal."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.api_bodies import (
    API_ACTOR,
    AddressIn,
    AfterSaleIn,
    DemandSignalIn,
    OrderIn,
    SkuIn,
    StockIn,
    TriggerIn,
    UnfreezeIn,
    fen,
)
from bot.jsonio import domain_error, error, ok, parse_body, path_value
from bot.keys import BUS, DB, DISPATCHER, SETTINGS
from bot.views import aftersale_json, order_json
from domain import commands as c
from domain import limits as lim
from domain.errors import DomainError, NotFound
from domain.inventory import Stock
from domain.safety_stock import RecordDemandSignal, RegisterSku, UnfreezeSku
from handlers.address_check import AddressChangeOutcome, RequestAddressChange
from handlers.customers import OTHER_ORDERS_LISTED, normalise_phone
from integrations.db.uow import UnitOfWork

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SELF_AUTHENTICATED = frozenset({"/api/v1/health"})  # checks the API token itself, or a dashboard session (bot/dashboard.py)


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer auth for /api/, and every domain refusal turned into a JSON 4xx that names the reason."""
    if request.path.startswith("/api/") and request.path not in SELF_AUTHENTICATED:
        expected = f"Bearer {request.app[SETTINGS].api.token.get_secret_value()}"
        try:  # aiohttp keeps bytes that are not UTF-8 as surrogates, which have no UTF-8 form
            given = request.headers.get("Authorization", "").encode("utf-8")
        except UnicodeEncodeError:
            log.warning("api: Authorization header not UTF-8 from %s for %r", request.remote, request.path)
            return error(400, "invalid_header", "Authorization 请求头不是合法的 UTF-8。")
        if not hmac.compare_digest(given, expected.encode()):
            log.warning("api: bad token from %s for %r", request.remote, request.path)
            return error(401, "unauthorized", "缺少或错误的 API 令牌（Authorization: Bearer <token>）。")
    try:
        return await handler(request)
    except DomainError as err:
        log.info("api: %s %r refused: %r", request.method, request.path, err.reason)
        return domain_error(err)


@routes.post("/api/v1/orders")
async def create_order(request: web.Request) -> web.Response:
    body = await parse_body(request, OrderIn)
    cmd = c.CreateOrder(
        channel=body.channel, external_id=body.external_id, customer_id=body.customer.id,
        customer_name=body.customer.name, customer_phone=body.customer.phone, address=body.address,
        customer=body.customer.keys(body.channel),
        lines=tuple(c.LineInput(x.sku, x.qty, fen(x.unit_price), x.name) for x in body.lines),
        paid=body.paid, store=body.store, by=API_ACTOR, via="api",
    )
    order, created = await request.app[BUS].handle(cmd)
    request.app[DISPATCHER].notify()  # its pushes (the out-of-stock alert among them) leave now, not at the next poll
    _, phone_problem = normalise_phone(body.customer.phone)  # no key, and said so; the order went on
    return await _order_response(request, order.order_no, 201 if created else 200,
                                 [phone_problem] if phone_problem else [])


@routes.get("/api/v1/orders/{order_no}")
async def get_order(request: web.Request) -> web.Response:
    return await _order_response(request, path_value(request, "order_no", lim.ORDER_NO))


async def _order_response(request: web.Request, ref: str, status: int = 200, warnings: list[str] | None = None
                          ) -> web.Response:
    async with UnitOfWork(request.app[DB]) as uow:
        order = await uow.orders.find(ref)
        if order is None:
            raise NotFound(f"找不到订单 {ref}。")
        history = await uow.history("order", order.order_no)
        children = await uow.orders.children(order.order_no)
        others = await uow.customers.other_orders(order.customer_id, order.order_no, OTHER_ORDERS_LISTED)
        k3_bills = await uow.views.k3_bills(order.order_no)
    data = order_json(order, history, children, others, k3_bills)
    if warnings:
        data["warnings"] = warnings
    return ok(data, status)


@routes.post("/api/v1/orders/{order_no}/address")
async def change_address(request: web.Request) -> web.Response:
    """Checked on the map first: an address without street and number is refused (422) and sent to customer service."""
    order_no = path_value(request, "order_no", lim.ORDER_NO)
    body = await parse_body(request, AddressIn)
    cmd = RequestAddressChange(order_no, body.address, by=body.by, via="api")
    outcome: AddressChangeOutcome = await request.app[BUS].handle(cmd)
    request.app[DISPATCHER].notify()  # the relabel card (or the service card) leaves now, not at the next poll
    check = outcome.check
    if not outcome.applied and check is not None:
        return error(422, "address_unresolved", check.reason, order_no=outcome.order.order_no,
                     level=check.level, formatted=check.formatted)
    return await _order_response(request, order_no)


@routes.post("/api/v1/orders/{order_no}/trigger")
async def fire_trigger(request: web.Request) -> web.Response:
    order_no = path_value(request, "order_no", lim.ORDER_NO)
    body = await parse_body(request, TriggerIn)
    cmd = c.FireOrderTrigger(order_no, body.trigger, by=body.by, via="api", waybill=body.waybill, reason=body.reason)
    await request.app[BUS].handle(cmd)
    return await _order_response(request, order_no)


@routes.post("/api/v1/aftersales")
async def open_aftersale(request: web.Request) -> web.Response:
    body = await parse_body(request, AfterSaleIn)
    cmd = c.OpenAfterSale(body.order_no, body.kind, body.reason, fen(body.amount), by=body.by, via="api")
    aftersale = await request.app[BUS].handle(cmd)
    return await _aftersale_response(request, aftersale.aftersale_no, 201)


@routes.get("/api/v1/aftersales/{aftersale_no}")
async def get_aftersale(request: web.Request) -> web.Response:
    return await _aftersale_response(request, path_value(request, "aftersale_no", lim.AFTERSALE_NO))


async def _aftersale_response(request: web.Request, aftersale_no: str, status: int = 200) -> web.Response:
    async with UnitOfWork(request.app[DB]) as uow:
        aftersale = await uow.aftersales.get(aftersale_no.upper())
        if aftersale is None:
            raise NotFound(f"找不到售后单 {aftersale_no}。")
        history = await uow.history("aftersale", aftersale.aftersale_no)
    return ok(aftersale_json(aftersale, history), status)


@routes.get("/api/v1/inventory/{store}/{sku}")
async def get_stock(request: web.Request) -> web.Response:
    store, sku = path_value(request, "store", lim.STORE), path_value(request, "sku", lim.SKU)
    async with UnitOfWork(request.app[DB]) as uow:
        stock = await uow.inventory.get(store, sku)
    if stock is None:
        raise NotFound(f"门店 {store} 没有 {sku} 的库存记录。")
    return ok(_stock_json(stock))


@routes.put("/api/v1/inventory/{store}/{sku}")
async def put_stock(request: web.Request) -> web.Response:
    store, sku = path_value(request, "store", lim.STORE), path_value(request, "sku", lim.SKU)
    body = await parse_body(request, StockIn)
    if not await _store_exists(request, store):
        raise NotFound(f"没有门店 {store}：先登记门店（orderbot stores add {store} …）才能设库存。")
    stock = await request.app[BUS].handle(c.SetStock(store, sku, body.on_hand, by=API_ACTOR, via="api"))
    return ok(_stock_json(stock))


async def _store_exists(request: web.Request, store: str) -> bool:
    """A store is one in the register, one somebody works in or one that holds stock: stock for a mistyped code
    would never be sold."""
    async with UnitOfWork(request.app[DB]) as uow:
        return (await uow.stores.get(store) is not None or bool(await uow.users.list(store=store))
                or store in await uow.inventory.stores())


def _stock_json(stock: Stock) -> dict[str, object]:
    return {
        "store": stock.store,
        "sku": stock.sku,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "available": stock.available,
    }


@routes.post("/api/v1/demand-signals")
async def post_demand_signal(request: web.Request) -> web.Response:
    body = await parse_body(request, DemandSignalIn)
    cmd = RecordDemandSignal(body.sku, body.channel, body.kind, body.value, body.at, by=API_ACTOR, via="api")
    await request.app[BUS].handle(cmd)
    return ok({"accepted": True}, 202)


@routes.put("/api/v1/skus/{sku}")
async def put_sku(request: web.Request) -> web.Response:
    sku = path_value(request, "sku", lim.SKU)
    body = await parse_body(request, SkuIn)
    cmd = RegisterSku(sku, body.name, body.replenish_threshold, body.lead_time_days,
                      by=API_ACTOR, via="api")
    return ok(await request.app[BUS].handle(cmd))


@routes.post("/api/v1/skus/{sku}/unfreeze")
async def unfreeze_sku(request: web.Request) -> web.Response:
    """Lift the safety-stock freezes of a SKU (all its frozen channels, or those named); 404 when none holds."""
    sku = path_value(request, "sku", lim.SKU)
    body = await parse_body(request, UnfreezeIn) if request.can_read_body else UnfreezeIn()
    lifted = await request.app[BUS].handle(UnfreezeSku(sku, by=body.by, via="api", channels=tuple(body.channels)))
    return ok({"sku": sku, "lifted": lifted})
