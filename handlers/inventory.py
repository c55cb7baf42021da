"""Inventory use cases: a store's stock count set by hand or by the ERP."""

from __future__ import annotations

from domain import commands as c
from domain.inventory import Stock
from handlers.bus import Deps, Router
from integrations.db.uow import UnitOfWork

router = Router()


@router.command(c.SetStock)
async def set_stock(cmd: c.SetStock, uow: UnitOfWork, deps: Deps) -> Stock:
    stock = await uow.inventory.get(cmd.store, cmd.sku) or Stock(cmd.store, cmd.sku)
    before = stock.on_hand
    stock.set_on_hand(cmd.on_hand)
    await uow.inventory.save(stock, deps.now)
    await uow.audit(
        actor=cmd.by, via=cmd.via, entity="inventory", entity_id=cmd.subject()[1],
        action="set_stock", at=deps.now, detail={"from": before, "to": stock.on_hand},
    )
    return stock
