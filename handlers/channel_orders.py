"""A channel's orders that could not become orders are parked: one 异常 lists them, each once."""

from __future__ import annotations

from domain import commands as c
from domain.consistency import system_name
from handlers.bus import Deps, Router
from handlers.unit_of_work import AbstractUnitOfWork

router = Router()
SHOWN = 10  # bills named in the 异常's text


@router.command(c.ParkChannelOrders)
async def park_channel_orders(cmd: c.ParkChannelOrders, uow: AbstractUnitOfWork, deps: Deps) -> int:
    """Returns how many were new (a bill read again by the next pull is not reported twice)."""
    now = deps.now
    keys = {f"parked:{cmd.channel}:{ext}:{reason}"[:160]: (ext, reason) for ext, reason in cmd.parked}
    new = await uow.marks.once(list(keys), now)
    fresh = [keys[k] for k in keys if k in new]
    if fresh:
        lines = "；".join(f"{ext}（{reason}）" for ext, reason in fresh[:SHOWN])
        more = f" 等 {len(fresh)} 单" if len(fresh) > SHOWN else ""
        await uow.incidents.open(kind="channel_order", at=now,
                                 message=f"{system_name(cmd.channel)}订单未能导入：{lines}{more}。请在源系统修正后重新审核。")
    return len(fresh)
