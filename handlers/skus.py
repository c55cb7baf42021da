"""SKU use cases for safety stock: register thresholds, record demand signals, freeze and unfreeze channels,
and flag an order that arrives on a channel where its SKU is frozen.

A frozen channel is told not to show the SKU; orderbot cannot stop the platform from taking an order that was
already placed and paid there. Such an order is therefore not refused (a refusal would silently drop a paying
customer): it goes on through the lifecycle, and an exceptions row `frozen_channel_order` plus a highlighted
push tell the supervisors, who decide whether to ship it or cancel it with the customer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from domain import events, facts
from domain.chat import Reply
from domain.errors import InvalidInput, NotFound
from domain.safety_stock import SIGNAL_KINDS, RecordDemandSignal, RegisterSku, UnfreezeSku
from handlers.bus import Deps, Router
from handlers.notify import notify_role
from handlers.unit_of_work import AbstractUnitOfWork
from integrations.db.skus import SkuRegistration

router = Router()
ACTOR, VIA = "safety_stock", "job"
NEW_SALE_TRIGGERS = ("pay", "allocate")  # the moments an order counts as a sale (creation carries no order_no yet)


@router.command(RegisterSku)
async def register_sku(cmd: RegisterSku, uow: AbstractUnitOfWork, deps: Deps) -> dict[str, Any]:
    if cmd.replenish_threshold < 0 or cmd.lead_time_days < 0:
        raise InvalidInput("补货阈值和交期不能为负。")
    now = deps.now
    await uow.skus.register(cmd.sku, SkuRegistration(cmd.name, cmd.replenish_threshold, cmd.lead_time_days), now)
    uow.emit(facts.SkuRegistered(cmd.sku, cmd.name, cmd.replenish_threshold, cmd.lead_time_days))
    return {"sku": cmd.sku, "name": cmd.name, "replenish_threshold": cmd.replenish_threshold,
            "lead_time_days": cmd.lead_time_days}


@router.command(RecordDemandSignal)
async def record_demand_signal(cmd: RecordDemandSignal, uow: AbstractUnitOfWork, deps: Deps) -> None:
    """Signals are data, not decisions: stored as they come, not audited."""
    if cmd.kind not in SIGNAL_KINDS:
        raise InvalidInput(f"未知信号类型 {cmd.kind}，应为 {' 或 '.join(SIGNAL_KINDS)}。")
    if cmd.value < 0:
        raise InvalidInput("信号数值不能为负。")
    await uow.skus.record_signal(sku=cmd.sku, channel=cmd.channel, kind=cmd.kind, value=cmd.value, at=cmd.at or deps.now)


async def freeze(
    uow: AbstractUnitOfWork, at: datetime, sku: str, channels: Iterable[str], *, reason: str
) -> list[str]:
    """Freeze `sku` on each of `channels` not frozen already; audited. Returns the channels frozen now."""
    held = {channel for _, channel in await uow.freezes.active([sku])}
    fresh = [channel for channel in dict.fromkeys(channels) if channel not in held]
    if not fresh:
        return []
    await uow.freezes.add(sku, fresh, reason=reason, at=at)
    uow.emit(*(facts.ChannelFrozen(sku, channel, reason, ACTOR, VIA) for channel in fresh))
    return fresh


@router.command(UnfreezeSku)
async def unfreeze_sku(cmd: UnfreezeSku, uow: AbstractUnitOfWork, deps: Deps) -> list[str]:
    now = deps.now
    held = sorted(channel for _, channel in await uow.freezes.active([cmd.sku])
                  if not cmd.channels or channel in cmd.channels)
    if not held:
        raise NotFound(f"{cmd.sku} 没有生效中的渠道冻结。")
    await uow.freezes.lift(cmd.sku, held, by=cmd.by, at=now)
    uow.emit(*(facts.ChannelUnfrozen(cmd.sku, channel) for channel in held))
    return held


@router.events_of(events.OrderStateChanged)
async def sales_on_frozen_channels(
    changes: list[events.OrderStateChanged], uow: AbstractUnitOfWork, deps: Deps
) -> None:
    await flag_frozen_channel_orders(
        uow, deps, [e.order_no for e in changes if e.order_no and e.trigger in NEW_SALE_TRIGGERS]
    )


@router.events_of(events.OrderOutOfStock)
async def unfilled_sales_on_frozen_channels(
    shortages: list[events.OrderOutOfStock], uow: AbstractUnitOfWork, deps: Deps
) -> None:
    await flag_frozen_channel_orders(uow, deps, [e.order_no for e in shortages if e.order_no])


async def flag_frozen_channel_orders(uow: AbstractUnitOfWork, deps: Deps, order_nos: Sequence[str]) -> None:
    """An incident and a supervisor push per new order and frozen SKU; each once."""
    if not order_nos:
        return
    frozen = await uow.freezes.active()
    if not frozen:
        return
    hits = {
        f"frozen_order:{r.order_no}:{sku}": (r, sku)
        for r in await uow.views.top_level_order_skus(order_nos) for sku in r.skus if (sku, r.channel) in frozen
    }
    fresh = await uow.marks.once(list(hits), deps.now)
    for key, (r, sku) in hits.items():
        if key not in fresh:
            continue
        text = (f"冻结渠道来单：订单 {r.order_no} 来自 {r.channel}，其中 {sku} 在该渠道已冻结（补货中）。"
                "订单未拒收，请决定发货或与客户协商取消。")
        await uow.incidents.open(kind="frozen_channel_order", order_no=r.order_no, sku=sku, store=r.store,
                                 message=text, at=deps.now)
        await notify_role(uow, deps, "supervisor", Reply(f'<font color="warning">注意</font> {text}', markdown=True),
                          dedup_key=key)
