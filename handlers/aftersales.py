"""After-sale use cases: open, approve (one or two approvers by amount), reject, and their reactions."""

from __future__ import annotations

from domain import commands as c
from domain import events
from domain.aftersale import AfterSale, open_aftersale
from domain.errors import Forbidden, NotFound
from handlers.bus import Deps, Router
from handlers.chat import Button, Card, Reply
from handlers.metrics import TRANSITIONS
from handlers.notify import notify_role, notify_user
from handlers.orders import load_order
from integrations.db.uow import UnitOfWork

router = Router()


def yuan(fen: int) -> str:
    return f"¥{fen / 100:,.2f}"


async def load_aftersale(uow: UnitOfWork, aftersale_no: str) -> AfterSale:
    aftersale = await uow.aftersales.get(aftersale_no.upper())
    if aftersale is None:
        raise NotFound(f"找不到售后单 {aftersale_no}，请核对编号。")
    return aftersale


@router.command(c.OpenAfterSale)
async def open_case(cmd: c.OpenAfterSale, uow: UnitOfWork, deps: Deps) -> AfterSale:
    order = await load_order(uow, cmd.order_no)
    aftersale = open_aftersale(
        aftersale_no="", order_no=order.order_no, order_amount_fen=order.amount_fen, kind=cmd.kind,
        reason=cmd.reason, amount_fen=cmd.amount_fen, requested_by=cmd.by, policy=deps.policy, at=deps.now,
    )
    await uow.aftersales.add(aftersale)
    await uow.audit(
        actor=cmd.by, via=cmd.via, entity="aftersale", entity_id=aftersale.aftersale_no, action="open",
        to_state=aftersale.state, at=deps.now,
        detail={"order_no": order.order_no, "kind": cmd.kind, "amount_fen": cmd.amount_fen},
    )
    return aftersale


async def _user_roles(uow: UnitOfWork, userid: str) -> frozenset[str]:
    user = await uow.users.get(userid)
    if user is None:
        raise Forbidden("您还不是本系统的用户，请联系管理员开通。")
    return user.roles


@router.command(c.ApproveAfterSale)
async def approve(cmd: c.ApproveAfterSale, uow: UnitOfWork, deps: Deps) -> tuple[AfterSale, bool]:
    """Returns (aftersale, done); done is False while a manager's second approval is still needed."""
    aftersale = await load_aftersale(uow, cmd.aftersale_no)
    before = aftersale.state
    done = aftersale.approve(cmd.by, await _user_roles(uow, cmd.by), deps.policy, deps.now)
    await uow.aftersales.save(aftersale)
    await uow.audit(
        actor=cmd.by, via=cmd.via, entity="aftersale", entity_id=aftersale.aftersale_no,
        action="approve" if done else "first_approval", from_state=before, to_state=aftersale.state,
        at=deps.now,
    )
    if done:
        TRANSITIONS.labels("aftersale", "approve").inc()
    return aftersale, done


@router.command(c.RejectAfterSale)
async def reject(cmd: c.RejectAfterSale, uow: UnitOfWork, deps: Deps) -> AfterSale:
    aftersale = await load_aftersale(uow, cmd.aftersale_no)
    before = aftersale.state
    aftersale.reject(cmd.by, await _user_roles(uow, cmd.by), cmd.reason, deps.now)
    await uow.aftersales.save(aftersale)
    await uow.audit(
        actor=cmd.by, via=cmd.via, entity="aftersale", entity_id=aftersale.aftersale_no, action="reject",
        from_state=before, to_state=aftersale.state, reason=cmd.reason, at=deps.now,
    )
    TRANSITIONS.labels("aftersale", "reject").inc()
    return aftersale


def approval_card(aftersale_no: str, order_no: str, amount_fen: int, note: str) -> Card:
    return Card(
        title=f"退款待审批 {yuan(amount_fen)}",
        description=note,
        task_id=f"approve-{aftersale_no}",
        fields=(("售后单", aftersale_no), ("订单", order_no), ("金额", yuan(amount_fen))),
        buttons=(Button(f"approve {aftersale_no}", "同意", 1), Button(f"reject {aftersale_no}", "拒绝", 2)),
        highlight=True,
    )


@router.event(events.AfterSaleOpened)
async def ask_supervisors(event: events.AfterSaleOpened, uow: UnitOfWork, deps: Deps) -> None:
    if not event.needs_approval:
        return
    note = "超过复核线，主管同意后还需经理复核。" if deps.policy.needs_manager(event.amount_fen) else "请审批。"
    await notify_role(
        uow, deps, "supervisor", approval_card(event.aftersale_no, event.order_no, event.amount_fen, note),
        dedup_key=f"approve:{event.aftersale_no}:supervisor",
    )


@router.event(events.ApprovalRecorded)
async def ask_manager(event: events.ApprovalRecorded, uow: UnitOfWork, deps: Deps) -> None:
    aftersale = await load_aftersale(uow, event.aftersale_no)
    card = approval_card(
        aftersale.aftersale_no, aftersale.order_no, aftersale.amount_fen, f"主管 {event.by} 已同意，请经理复核。"
    )
    await notify_role(uow, deps, "manager", card, dedup_key=f"approve:{event.aftersale_no}:manager")


@router.event(events.RefundApproved)
async def instruct_finance(event: events.RefundApproved, uow: UnitOfWork, deps: Deps) -> None:
    text = (
        f"售后单 {event.aftersale_no}（订单 {event.order_no}）已同意退款 {yuan(event.amount_fen)}，"
        f"请开具退款凭证。审批人：{'、'.join(event.approvers)}"
    )
    await notify_role(uow, deps, "finance", Reply(text), dedup_key=f"refund:{event.aftersale_no}")


@router.event(events.RefundRejected)
async def tell_requester(event: events.RefundRejected, uow: UnitOfWork, deps: Deps) -> None:
    aftersale = await load_aftersale(uow, event.aftersale_no)
    if await uow.users.get(aftersale.requested_by) is None:
        return
    reason = f"，原因：{event.reason}" if event.reason else ""
    await notify_user(
        uow, deps, aftersale.requested_by,
        Reply(f"售后单 {event.aftersale_no} 被 {event.by} 拒绝{reason}。"),
        dedup_key=f"rejected:{event.aftersale_no}",
    )
