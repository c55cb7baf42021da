"""SKU use cases for safety stock: register thresholds, record demand signals, freeze and unfreeze channels,
and flag an order that arrives on a channel where its SKU is frozen.

A frozen channel is told not to show the SKU; orderbot cannot stop the platform from taking an order that was
already placed and paid there. Such an order is therefore not refused (a refusal would silently drop a paying
customer): it goes on through the lifecycle, and an exceptions row `frozen_channel_order` plus a highlighted
push tell the supervisors, who decide whether to ship it or cancel it with the customer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain import events
from domain.chat import Reply
from domain.errors import InvalidInput, NotFound
from domain.safety_stock import SIGNAL_KINDS, RecordDemandSignal, RegisterSku, UnfreezeSku
from handlers.bus import Deps, Router
from handlers.notify import notify_role
from integrations.db import tables as t
from integrations.db.marks import mark_once
from integrations.db.uow import UnitOfWork

router = Router()
ACTOR, VIA = "safety_stock", "job"
NEW_SALE_TRIGGERS = ("pay", "allocate")  # the moments an order counts as a sale (creation carries no order_no yet)


@router.command(RegisterSku)
async def register_sku(cmd: RegisterSku, uow: UnitOfWork, deps: Deps) -> dict[str, Any]:
    if cmd.replenish_threshold < 0 or cmd.lead_time_days < 0:
        raise InvalidInput("补货阈值和交期不能为负。")
    now = deps.now
    s = t.skus.c
    values = {"name": cmd.name, "replenish_threshold": cmd.replenish_threshold,
              "lead_time_days": cmd.lead_time_days, "updated_at": now}
    known = (await uow.conn.execute(select(s.sku).where(s.sku == cmd.sku))).first()
    if known is None:
        await uow.conn.execute(insert(t.skus).values(sku=cmd.sku, **values))
    else:
        await uow.conn.execute(update(t.skus).where(s.sku == cmd.sku).values(**values))
    await uow.audit(
        actor=cmd.by, via=cmd.via, entity="sku", entity_id=cmd.sku, action="register_sku", at=now,
        detail={k: v for k, v in values.items() if k != "updated_at"},
    )
    return {"sku": cmd.sku, "name": cmd.name, "replenish_threshold": cmd.replenish_threshold,
            "lead_time_days": cmd.lead_time_days}


@router.command(RecordDemandSignal)
async def record_demand_signal(cmd: RecordDemandSignal, uow: UnitOfWork, deps: Deps) -> None:
    """Signals are data, not decisions: stored as they come, not audited."""
    if cmd.kind not in SIGNAL_KINDS:
        raise InvalidInput(f"未知信号类型 {cmd.kind}，应为 {' 或 '.join(SIGNAL_KINDS)}。")
    if cmd.value < 0:
        raise InvalidInput("信号数值不能为负。")
    await uow.conn.execute(insert(t.demand_signals).values(
        sku=cmd.sku, channel=cmd.channel, kind=cmd.kind, value=cmd.value, at=(cmd.at or deps.now).astimezone(UTC),
    ))  # UTC like every stored time: SQLite keeps the wall clock and drops the offset


async def active_freezes(conn: AsyncConnection, skus: Sequence[str] | None = None) -> set[tuple[str, str]]:
    """(sku, channel) of every freeze still in force, for `skus` or all."""
    f = t.sku_freezes.c
    stmt = select(f.sku, f.channel).where(f.lifted_at.is_(None))
    if skus is not None:
        stmt = stmt.where(f.sku.in_(skus))
    return {(sku, channel) for sku, channel in await conn.execute(stmt)}


async def freeze(uow: UnitOfWork, at: datetime, sku: str, channels: Iterable[str], *, reason: str) -> list[str]:
    """Freeze `sku` on each of `channels` not frozen already; audited. Returns the channels frozen now."""
    held = {channel for _, channel in await active_freezes(uow.conn, [sku])}
    fresh = [channel for channel in dict.fromkeys(channels) if channel not in held]
    if not fresh:
        return []
    await uow.conn.execute(insert(t.sku_freezes), [
        {"sku": sku, "channel": channel, "reason": reason, "frozen_at": at} for channel in fresh
    ])
    await uow.audit_many([
        {"at": at, "actor": ACTOR, "via": VIA, "entity": "sku", "entity_id": sku, "action": "freeze",
         "from_state": None, "to_state": None, "outcome": "ok", "reason": reason, "detail": {"channel": channel}}
        for channel in fresh
    ])
    return fresh


@router.command(UnfreezeSku)
async def unfreeze_sku(cmd: UnfreezeSku, uow: UnitOfWork, deps: Deps) -> list[str]:
    now = deps.now
    held = sorted(channel for _, channel in await active_freezes(uow.conn, [cmd.sku])
                  if not cmd.channels or channel in cmd.channels)
    if not held:
        raise NotFound(f"{cmd.sku} 没有生效中的渠道冻结。")
    f = t.sku_freezes.c
    await uow.conn.execute(
        update(t.sku_freezes).where(f.sku == cmd.sku, f.channel.in_(held), f.lifted_at.is_(None))
        .values(lifted_at=now, lifted_by=cmd.by)
    )
    await uow.audit_many([
        {"at": now, "actor": cmd.by, "via": cmd.via, "entity": "sku", "entity_id": cmd.sku, "action": "unfreeze",
         "from_state": None, "to_state": None, "outcome": "ok", "reason": "", "detail": {"channel": channel}}
        for channel in held
    ])
    return held


@router.events_of(events.OrderStateChanged)
async def sales_on_frozen_channels(changes: list[events.OrderStateChanged], uow: UnitOfWork, deps: Deps) -> None:
    await flag_frozen_channel_orders(
        uow, deps, [e.order_no for e in changes if e.order_no and e.trigger in NEW_SALE_TRIGGERS]
    )


@router.events_of(events.OrderOutOfStock)
async def unfilled_sales_on_frozen_channels(
    shortages: list[events.OrderOutOfStock], uow: UnitOfWork, deps: Deps
) -> None:
    await flag_frozen_channel_orders(uow, deps, [e.order_no for e in shortages if e.order_no])


async def flag_frozen_channel_orders(uow: UnitOfWork, deps: Deps, order_nos: Sequence[str]) -> None:
    """An exceptions row and a supervisor push per new order and frozen SKU; each once."""
    if not order_nos:
        return
    frozen = await active_freezes(uow.conn)
    if not frozen:
        return
    o = t.orders.c
    rows = (await uow.conn.execute(
        select(o.order_no, o.channel, o.lines, o.store)
        .where(o.order_no.in_(set(order_nos)), o.parent_no.is_(None))
        .order_by(o.order_no)
    )).all()
    hits = {
        f"frozen_order:{r.order_no}:{line['sku']}": (r, line["sku"])
        for r in rows for line in r.lines if (line["sku"], r.channel) in frozen
    }
    fresh = await mark_once(uow.conn, list(hits), deps.now)
    for key, (r, sku) in hits.items():
        if key not in fresh:
            continue
        text = (f"冻结渠道来单：订单 {r.order_no} 来自 {r.channel}，其中 {sku} 在该渠道已冻结（补货中）。"
                "订单未拒收，请决定发货或与客户协商取消。")
        await uow.open_exception(kind="frozen_channel_order", order_no=r.order_no, sku=sku, store=r.store,
                                 message=text, at=deps.now)
        await notify_role(uow, deps, "supervisor", Reply(f'<font color="warning">注意</font> {text}', markdown=True),
                          dedup_key=key)
