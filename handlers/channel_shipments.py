"""A shipped order is told back to the channel that sold it: Douyin orders get the shop's ship-confirm, mini-program
orders WeChat's shipping-info upload, each an outbox row (ChannelShipment) committed with the shipment. Orders of
other channels (REST, K3, imports) and orders without the platform's order id send nothing."""

from __future__ import annotations

from domain import events
from domain.customers import masked_phone
from domain.order import Order
from domain.outbox_systems import ChannelShipment
from handlers.bus import Deps, Router
from handlers.unit_of_work import AbstractUnitOfWork

router = Router()
TOLD = ("douyin", "miniprogram")
ITEM_DESC_CHARS = 120  # WeChat's limit for item_desc


def item_desc(order: Order) -> str:
    text = "，".join(f"{line.name or line.sku}×{line.qty}" for line in order.lines)
    return text if len(text) <= ITEM_DESC_CHARS else text[:ITEM_DESC_CHARS - 1] + "…"


@router.events_of(events.OrderShipped)
async def tell_channels(shipped: list[events.OrderShipped], uow: AbstractUnitOfWork, deps: Deps) -> None:
    waybills = {e.order_no: e.waybill for e in shipped if e.waybill}
    if not waybills:
        return
    orders = await uow.orders.get_many(sorted(waybills))
    told = [o for o in orders.values() if o.channel in TOLD and o.external_id]
    if not told:
        return
    buyers = [o.customer_id for o in told if o.channel == "miniprogram" and o.customer_id]
    openids = await uow.customer_keys.of_customers(buyers, kind="openid") if buyers else {}
    await uow.send(*(
        ChannelShipment(
            platform=o.channel, order_no=o.order_no, external_id=o.external_id, waybill=waybills[o.order_no],
            item_desc=item_desc(o),
            payer=next((value for _, value in openids.get(o.customer_id, [])), ""),
            receiver_phone=masked_phone(o.customer_phone) if o.customer_phone else "",
        )
        for o in sorted(told, key=lambda o: o.order_no)
    ), at=deps.now)
