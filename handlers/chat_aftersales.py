"""Chat verbs for after-sale decisions: 同意/拒绝 typed or clicked on the approval card.

A decision made from a card click also updates that card, in the same transaction (the chat pipeline does
it from the command's declaration), so it then shows who decided and when ("已同意 · 李敏 10:42"). A click on a case that is already decided changes nothing and
says who decided it; the refusal rolls back, so no second card update is queued.
"""

from __future__ import annotations

from domain import commands as c
from domain.aftersale import AfterSale
from domain.chat import Reply
from domain.chat_commands import ApproveRefund, RejectRefund
from domain.clock import hhmm
from domain.errors import Conflict, GuardRefused, IllegalTransition
from handlers.aftersales import Strategy, approve, choose_strategy, load_aftersale, name_of, reject, yuan
from handlers.chat_router import ChatContext, ChatRouter
from integrations.db.uow import UnitOfWork

chat = ChatRouter()
router = chat.router

APPROVED_STATES = frozenset({"approved", "return_in_transit", "received", "refunded", "replaced"})


@chat.handles(ApproveRefund)
async def approve_aftersale(cmd: ApproveRefund, ctx: ChatContext) -> Reply:
    uow, aftersale_no = ctx.uow, cmd.aftersale_no
    await refuse_if_decided(uow, aftersale_no)
    try:
        decision = c.ApproveAfterSale(aftersale_no, by=ctx.user.userid, via=cmd.via)
        aftersale, done = await approve(decision, uow, ctx.deps)
    except (Conflict, IllegalTransition):
        await refuse_if_decided(uow, aftersale_no)  # someone decided it a moment ago: say who
        raise
    if not done:
        return Reply("已记录您的同意，还需经理复核，已推送给经理。")
    return Reply(approved_text(aftersale, await choose_strategy(aftersale, uow)))


@chat.handles(RejectRefund)
async def reject_aftersale(cmd: RejectRefund, ctx: ChatContext) -> Reply:
    uow, aftersale_no, reason = ctx.uow, cmd.aftersale_no, cmd.reason.strip()
    await refuse_if_decided(uow, aftersale_no)
    try:
        aftersale = await reject(
            c.RejectAfterSale(aftersale_no, by=ctx.user.userid, via=cmd.via, reason=reason), uow, ctx.deps
        )
    except (Conflict, IllegalTransition):
        await refuse_if_decided(uow, aftersale_no)
        raise
    told = "，已通知申请人" if await uow.users.get(aftersale.requested_by) is not None else ""
    because = f"（原因：{reason}）" if reason else ""
    return Reply(f"已拒绝售后单 {aftersale.aftersale_no}{because}{told}。")


def approved_text(aftersale: AfterSale, strategy: Strategy) -> str:
    head = f"已同意售后单 {aftersale.aftersale_no}"
    where = f"门店 {strategy.store} " if strategy.store else ""
    if strategy.kind == "replacement":
        return f"{head}（换货），{where}有货，已创建换货订单并推送仓库。"
    if strategy.kind == "purchase_request":
        skus = "、".join(sku for sku, _, _ in strategy.short)
        return f"{head}（换货），{skus} {where}缺货，已向采购发起补货申请。"
    return f"{head}，退款 {yuan(aftersale.amount_fen)}，已通知财务开退款凭证。"


async def refuse_if_decided(uow: UnitOfWork, aftersale_no: str) -> None:
    """Raise GuardRefused naming who decided and when, if the case no longer waits for a decision."""
    aftersale = await load_aftersale(uow, aftersale_no)
    sentence = await decided_sentence(uow, aftersale)
    if sentence:
        raise GuardRefused(sentence)


async def decided_sentence(uow: UnitOfWork, aftersale: AfterSale) -> str:
    no = aftersale.aftersale_no
    if aftersale.rejected_by:
        who = await name_of(uow, aftersale.rejected_by)
        return f"售后单 {no} 已由 {who} 于 {hhmm(aftersale.updated_at)} 拒绝，无需重复处理。"
    if aftersale.state in APPROVED_STATES or aftersale.state == "closed":
        if not aftersale.approvals:
            return f"售后单 {no} 金额在自动同意线以内，已自动同意，无需审批。"
        last = aftersale.approvals[-1]
        return f"售后单 {no} 已由 {await name_of(uow, last.by)} 于 {hhmm(last.at)} 同意，无需重复处理。"
    if aftersale.state != "pending_approval":
        return f"售后单 {no} 现在是“{aftersale.state_label}”，不能审批。"
    return ""
