"""Chat verbs for after-sale decisions: 同意/拒绝 typed or clicked on the approval card.

A decision made from a card click also updates that card, in the same transaction, so it then shows who
decided and when ("已同意 · 李敏 10:42"). A click on a case that is already decided changes nothing and
says who decided it; the refusal rolls back, so no second card update is queued.
"""

from __future__ import annotations

from domain import commands as c
from domain.aftersale import AfterSale
from domain.chat import Reply
from domain.clock import hhmm
from domain.errors import Conflict, GuardRefused, IllegalTransition, InvalidInput
from domain.users import User
from handlers.aftersales import Strategy, approve, choose_strategy, load_aftersale, name_of, reject, yuan
from handlers.bus import Deps
from handlers.chat_commands import ChatRequest, verb
from integrations.db.uow import UnitOfWork

APPROVED_STATES = frozenset({"approved", "return_in_transit", "received", "refunded", "replaced"})


@verb("approve", "supervisor", "manager", label="同意")
async def approve_aftersale(req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Reply:
    aftersale_no = _aftersale_no(req, "同意 <售后单号>")
    await refuse_if_decided(uow, aftersale_no)
    try:
        aftersale, done = await approve(c.ApproveAfterSale(aftersale_no, by=user.userid, via=req.via), uow, deps)
    except (Conflict, IllegalTransition):
        await refuse_if_decided(uow, aftersale_no)  # someone decided it a moment ago: say who
        raise
    await update_card(req, user, "已同意", uow, deps)
    if not done:
        return Reply("已记录您的同意，还需经理复核，已推送给经理。")
    return Reply(approved_text(aftersale, await choose_strategy(aftersale, uow)))


@verb("reject", "supervisor", "manager", label="拒绝")
async def reject_aftersale(req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Reply:
    aftersale_no = _aftersale_no(req, "拒绝 <售后单号> [原因]")
    reason = " ".join(req.args[1:]).strip()
    await refuse_if_decided(uow, aftersale_no)
    try:
        aftersale = await reject(
            c.RejectAfterSale(aftersale_no, by=user.userid, via=req.via, reason=reason), uow, deps
        )
    except (Conflict, IllegalTransition):
        await refuse_if_decided(uow, aftersale_no)
        raise
    await update_card(req, user, "已拒绝", uow, deps)
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


async def update_card(req: ChatRequest, user: User, decision: str, uow: UnitOfWork, deps: Deps) -> None:
    """Replace the clicked card's buttons with who decided and when (WeCom: one use per response_code)."""
    if not req.response_code:
        return
    await uow.enqueue(
        channel="chat", kind="card_update", recipient=user.userid,
        payload={"userids": [user.userid], "response_code": req.response_code,
                 "replace_text": f"{decision} · {user.name} {hhmm(deps.now)}"},
        at=deps.now, dedup_key=f"card:{req.response_code}",
    )


def _aftersale_no(req: ChatRequest, usage: str) -> str:
    if not req.args or not req.args[0].strip():
        raise InvalidInput(f"缺少售后单号。用法：{usage}")
    return req.args[0].strip().upper()
