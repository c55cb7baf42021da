"""Stock per store and SKU, and the allocation of an order's lines to stores. Stock never goes negative."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from domain.errors import InvalidInput, OutOfStock
from domain.order import OrderLine


@dataclass
class Stock:
    store: str
    sku: str
    on_hand: int = 0
    reserved: int = 0
    version: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def set_on_hand(self, on_hand: int) -> None:
        if on_hand < 0:
            raise InvalidInput("库存数量不能为负。")
        if on_hand < self.reserved:
            raise InvalidInput(
                f"门店 {self.store} 的 {self.sku} 已有 {self.reserved} 件被订单占用，在库数不能少于占用数。"
            )
        self.on_hand = on_hand


Availability = Mapping[str, Mapping[str, int]]  # store -> sku -> available units


def plan_allocation(
    lines: Sequence[OrderLine], available: Availability, preferred: str | None, store_order: Sequence[str]
) -> dict[str, list[OrderLine]]:
    """One store that can fill every line, preferred first, else each line to the nearest store that can.

    `store_order` lists stores nearest first. Raises OutOfStock naming the SKUs no store can fill.
    """
    stores = ([preferred] if preferred else []) + [s for s in store_order if s != preferred]
    need: dict[str, int] = {}
    for line in lines:
        need[line.sku] = need.get(line.sku, 0) + line.qty
    for store in stores:
        have = available.get(store, {})
        if all(have.get(sku, 0) >= qty for sku, qty in need.items()):
            return {store: list(lines)}
    plan: dict[str, list[OrderLine]] = {}
    left = {store: dict(available.get(store, {})) for store in stores}
    missing: list[str] = []
    for line in lines:
        chosen = next((s for s in stores if left[s].get(line.sku, 0) >= line.qty), None)
        if chosen is None:
            missing.append(line.sku)
            continue
        left[chosen][line.sku] -= line.qty
        plan.setdefault(chosen, []).append(line)
    if missing:
        raise OutOfStock("缺货：" + "、".join(sorted(set(missing))) + "，没有门店能发。")
    return plan
