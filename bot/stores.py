"""The store register over REST: GET and PUT /api/v1/stores/{code} (bearer token, checked by bot/api.py)."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from bot.api_bodies import API_ACTOR, Actor, Address, Body, Phone, StoreName
from bot.jsonio import ok, parse_body, path_value
from bot.keys import BUS, DB
from domain import limits as lim
from domain.errors import NotFound
from domain.stores import SaveStore, Store
from integrations.db.uow import UnitOfWork

routes = web.RouteTableDef()


class StoreIn(Body):
    name: StoreName
    address: Address
    phone: Phone = ""
    by: Actor = Field(default=API_ACTOR, min_length=1)


def store_json(store: Store) -> dict[str, str]:
    return {"code": store.code, "name": store.name, "address": store.address, "phone": store.phone}


@routes.get("/api/v1/stores/{code}")
async def get_store(request: web.Request) -> web.Response:
    code = path_value(request, "code", lim.STORE)
    async with UnitOfWork(request.app[DB]) as uow:
        store = await uow.stores.get(code)
    if store is None:
        raise NotFound(f"门店 {code} 没有登记。登记：PUT /api/v1/stores/{code} 或 orderbot stores add {code} …")
    return ok(store_json(store))


@routes.put("/api/v1/stores/{code}")
async def put_store(request: web.Request) -> web.Response:
    """Register the store or replace its name, address and phone (the sender on its e-waybills)."""
    code = path_value(request, "code", lim.STORE)
    body = await parse_body(request, StoreIn)
    store = await request.app[BUS].handle(SaveStore(code, body.name, body.address, body.phone, by=body.by, via="api"))
    return ok(store_json(store))
