"""The store register: a store registered or changed (CLI, REST), audited with what it was before."""

from __future__ import annotations

from domain.stores import SaveStore, Store, StoreSaved, checked_store
from handlers.bus import Deps, Router
from handlers.unit_of_work import AbstractUnitOfWork

router = Router()


@router.command(SaveStore)
async def save_store(cmd: SaveStore, uow: AbstractUnitOfWork, deps: Deps) -> Store:
    store = checked_store(cmd.code, cmd.name, cmd.address, cmd.phone)
    before = await uow.stores.get(store.code)
    if before == store:
        return store  # nothing changed: no line on the trail
    await uow.stores.save(store, deps.now)
    changed = None if before is None else {
        k: getattr(before, k) for k in ("name", "address", "phone") if getattr(before, k) != getattr(store, k)}
    uow.emit(StoreSaved(store.code, before is None, store.name, store.address, store.phone, changed))
    return store
