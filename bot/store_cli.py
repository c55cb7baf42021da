"""`orderbot stores add CODE --name NAME --address ADDRESS [--phone P]` and `orderbot stores list`."""

from __future__ import annotations

import asyncio

from bot.cli_database import open_database
from config.settings import Settings
from domain.errors import DomainError
from domain.stores import SaveStore, Store
from handlers.bootstrap import build_bus
from handlers.bus import Deps
from integrations.db.uow import UnitOfWork


def add_store(settings: Settings, code: str, name: str, address: str, phone: str) -> int:
    try:
        store, before = asyncio.run(_save(settings, SaveStore(code, name, address, phone, by="cli", via="cli")))
    except DomainError as err:
        raise ValueError(err.reason) from err
    verb = "已登记" if before is None else ("未改变" if before == store else "已更新")
    print(f"{verb}门店 {store.code}（{store.name}）：{store.address}{'，电话 ' + store.phone if store.phone else ''}")
    return 0


async def _save(settings: Settings, cmd: SaveStore) -> tuple[Store, Store | None]:
    async with open_database(settings) as db:
        async with UnitOfWork(db) as uow:
            before = await uow.stores.get(cmd.code.strip())
        return await build_bus(db, Deps()).handle(cmd), before


def list_stores(settings: Settings) -> int:
    stores = asyncio.run(_list(settings))
    if not stores:
        print("还没有登记门店。登记：orderbot stores add 门店编码 --name 名称 --address 地址 [--phone 电话]")
    for s in stores:
        print(f"{s.code}\t{s.name}\t{s.address}\t{s.phone or '-'}")
    return 0


async def _list(settings: Settings) -> list[Store]:
    async with open_database(settings) as db, UnitOfWork(db) as uow:
        return await uow.stores.list()
