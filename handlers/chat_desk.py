"""Chat commands at the desk: 待办, 异常, 概况, 确认/解决 an exception (异常), 解冻 a customer, 帮助, and the
direct answer to a message that is no command.
"""

from __future__ import annotations

from typing import Any

from domain import health
from domain.chat import Reply
from domain.chat_commands import (
    AcknowledgeIncident,
    Answer,
    ListIncidents,
    ReleaseSettlementHold,
    ResolveIncident,
    SetUserActive,
    ShowHelp,
    ShowSummary,
    ShowTasks,
    help_text,
)
from domain.errors import InvalidInput, NotFound
from domain.facts import AccountSwitched
from handlers import consistency, worklists
from handlers.chat_router import ChatContext, ChatRouter

chat = ChatRouter()
router = chat.router


@chat.handles(Answer)
async def answer(cmd: Answer, ctx: ChatContext) -> Reply:
    return Reply(cmd.text)


@chat.handles(ShowHelp)
async def show_help(cmd: ShowHelp, ctx: ChatContext) -> Reply:
    return Reply(help_text())


# ---- 待办 / 异常 / 概况

@chat.handles(ShowTasks)
async def my_tasks(cmd: ShowTasks, ctx: ChatContext) -> Reply:
    user, uow, now, sections = ctx.user, ctx.uow, ctx.deps.now, []
    if user.has("warehouse"):
        if user.store:
            sections.append((f"门店 {user.store} 待处理订单", await worklists.warehouse_tasks(uow, user.store, now)))
        else:
            sections.append(("门店待办", ["您还没有绑定门店，请联系运营经理。"]))
    if user.has("supervisor", "manager"):
        sections.append(("待审批售后", await worklists.approval_tasks(uow, now)))
        sections.append(("未处理异常", await worklists.exception_lines(uow, now)))
    if user.has("service"):
        sections.append(("改址待换面单", await worklists.address_change_tasks(uow, now)))
    if user.has("purchasing"):
        sections.append(("缺货与补货", await worklists.exception_lines(uow, now, kinds=("out_of_stock", "purchase_request"))))
    if user.has("finance"):
        sections.append(("结算冻结的客户", await worklists.held_customers(uow)))
    body = [f"【{title}】\n" + "\n".join(lines) for title, lines in sections if lines]
    if not body:
        return Reply("暂无待办，有新任务会推送给您。")
    return Reply("\n".join(body))


@chat.handles(ListIncidents)
async def list_exceptions(cmd: ListIncidents, ctx: ChatContext) -> Reply:
    lines = await worklists.exception_lines(ctx.uow, ctx.deps.now)
    if not lines:
        return Reply("暂无未处理的异常。")
    return Reply("\n".join(["未处理异常（最新在前）：", *lines, "认领：确认 <编号>；处理完：解决 <编号> [说明]"]))


@chat.handles(ShowSummary)
async def summary(cmd: ShowSummary, ctx: ChatContext) -> Reply:
    lines = await worklists.summary_lines(ctx.uow, ctx.deps.now)
    if score := await consistency.summary_line(ctx.uow):
        lines.append(score)
    return Reply("\n".join([*lines, *await health_lines(ctx), "发送「异常」查看异常，「待办」查看待办。"]))


async def health_lines(ctx: ChatContext) -> list[str]:
    """Today's headline figures of the health dashboard, and a signed link to it when it is set up."""
    now = ctx.deps.now
    figures = await ctx.uow.health.figures({"today": health.range_starts(now)["today"]}, now)
    today = figures.ranges["today"]
    rate = today.anomalies.rate
    lines = [
        f"处理时长（支付→发货）平均 {_minutes(today.processing.overall_s)} · 状态跳变异常率 "
        + ("—" if rate is None else f"{rate:.1f}%"),
        f"首次解决时长 平均 {_minutes(today.first_contact.mean_s)} · 中位 {_minutes(today.first_contact.median_s)}",
    ]
    if ctx.deps.dashboard_link is not None:
        lines.append(f"健康看板（限时链接，过期请重发「概况」）：{ctx.deps.dashboard_link(ctx.user.userid, now)}")
    return lines


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.0f} 分钟"


# ---- 确认 / 解决 an exception, 解冻 a customer

def _about(row: Any) -> str:
    return worklists.EXCEPTION_KINDS.get(row.kind, row.kind) + (f" {row.order_no}" if row.order_no else "")


@chat.handles(AcknowledgeIncident)
async def ack(cmd: AcknowledgeIncident, ctx: ChatContext) -> Reply:
    row = ctx.incident
    await worklists.ack_exception(ctx.uow, row, by=ctx.user.userid, via=cmd.via, at=ctx.deps.now)
    return Reply(f"已认领异常 #{row.id}（{_about(row)}）。处理完后发送：解决 {row.id} [说明]")


@chat.handles(ResolveIncident)
async def resolve(cmd: ResolveIncident, ctx: ChatContext) -> Reply:
    row = ctx.incident
    await worklists.resolve_exception(ctx.uow, row, cmd.note.strip(), by=ctx.user.userid, via=cmd.via, at=ctx.deps.now)
    left = len(await worklists.open_exceptions(ctx.uow))
    rest = f"还有 {left} 条未处理，发送「异常」查看。" if left else "异常已全部处理。"
    return Reply(f"已解决异常 #{row.id}（{_about(row)}）。{rest}")


@chat.handles(ReleaseSettlementHold)
async def release(cmd: ReleaseSettlementHold, ctx: ChatContext) -> Reply:
    row = await worklists.release_hold(ctx.uow, cmd.customer, by=ctx.user.userid, via=cmd.via, at=ctx.deps.now)
    why = f"（冻结原因：{row.hold_reason}）" if row.hold_reason else ""
    return Reply(f"已解冻客户 {row.name or row.customer_id}（{row.customer_id}）的结算{why}。其订单签收后即可结算完成。")


SWITCHES = {"停用": False, "disable": False, "启用": True, "enable": True}


@chat.handles(SetUserActive)
async def set_user_active(cmd: SetUserActive, ctx: ChatContext) -> Reply:
    """A manager disables (or re-enables) a staff account; a disabled account is refused from then on."""
    active = SWITCHES.get(cmd.switch.lower())
    if active is None:
        raise InvalidInput(f"请写“停用”或“启用”。用法：{cmd.spec.usage}")
    who = await ctx.uow.users.get(cmd.userid)
    if who is None:
        raise NotFound(f"找不到账号 {cmd.userid}，请核对企业微信账号（可用 orderbot users list 查看）。")
    if who.userid == ctx.user.userid and not active:
        raise InvalidInput("不能停用自己的账号，请让另一位运营经理操作。")
    word = "启用" if active else "停用"
    if who.active == active:
        return Reply(f"{who.name}（{who.userid}）的账号已是{word}状态，无需重复操作。")
    await ctx.uow.users.set_active(who.userid, active)
    ctx.uow.emit(AccountSwitched(who.userid, active, who.active))
    then = "可以继续使用订单助手。" if active else "此后其消息将被拒绝，也不再收到推送。"
    return Reply(f"已{word} {who.name}（{who.userid}）的账号，{then}")
