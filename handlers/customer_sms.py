"""A customer's text messages stopped or resumed (短信 <客户> 停发|恢复, PUT /api/v1/customers/{id}/sms).

An opted-out customer's SMS rows are still written with the change that caused them; the SMS sender sets them
aside as "skipped" (integrations/sms/aliyun.py), so the opt-out holds for texts already waiting too.
"""

from __future__ import annotations

from domain.chat import Reply
from domain.chat_commands import SetCustomerSms
from domain.commands import SetSmsOptOut
from domain.customers import Customer
from domain.errors import InvalidInput, NotFound
from domain.facts import SmsOptOutSet
from handlers.bus import Deps
from handlers.chat_router import ChatContext, ChatRouter
from handlers.unit_of_work import AbstractUnitOfWork

chat = ChatRouter()
router = chat.router
SWITCHES = {"停发": True, "stop": True, "恢复": False, "resume": False}


async def set_sms_opt_out(uow: AbstractUnitOfWork, ref: str, opt_out: bool, at_deps: Deps) -> tuple[Customer, bool]:
    """Returns (the customer as it is now, whether anything changed)."""
    customer = await uow.customers.find(ref)
    if customer is None:
        raise NotFound(f"找不到客户 {ref}，请核对客户编号（订单查询里可看到）。")
    if customer.sms_opt_out == opt_out:
        return customer, False
    await uow.customers.set_sms_opt_out(customer.customer_id, opt_out, at_deps.now)
    uow.emit(SmsOptOutSet(customer.customer_id, opt_out, customer.sms_opt_out))
    customer.sms_opt_out = opt_out
    return customer, True


@router.command(SetSmsOptOut)
async def set_opt_out(cmd: SetSmsOptOut, uow: AbstractUnitOfWork, deps: Deps) -> Customer:
    customer, _ = await set_sms_opt_out(uow, cmd.customer, cmd.opt_out, deps)
    return customer


@chat.handles(SetCustomerSms)
async def switch_sms(cmd: SetCustomerSms, ctx: ChatContext) -> Reply:
    opt_out = SWITCHES.get(cmd.switch.lower())
    if opt_out is None:
        raise InvalidInput(f"请写“停发”或“恢复”。用法：{cmd.spec.usage}")
    customer, changed = await set_sms_opt_out(ctx.uow, cmd.customer, opt_out, ctx.deps)
    who = f"{customer.name or customer.customer_id}（{customer.customer_id}）"
    if not changed:
        return Reply(f"客户 {who} 的短信已是{'停发' if opt_out else '开启'}状态，无需重复操作。")
    if opt_out:
        return Reply(f"已停发客户 {who} 的短信，尚未发出的也不再发送。恢复：短信 {customer.customer_id} 恢复")
    return Reply(f"已恢复客户 {who} 的短信，之后的发货、改址、退款通知会照常发送。")
