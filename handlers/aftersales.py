"""After-sale use cases: open (with the reason's category), approve (one or two approvers by amount), reject,
and what an approval sets going: a refund voucher from finance, a replacement order, or a purchase request.

Amounts are judged per order, never per request: what is left to refund and which approvals a request needs
come from the order's after-sales together (a split order's parent and children are one order here)."""

from __future__ import annotations

from dataclasses import dataclass

from domain import commands as c
from domain import events
from domain.aftersale import AfterSale, OrderRefunds, claimed_fen, open_aftersale
from domain.aftersale_reasons import classify
from domain.chat import Card, Reply
from domain.chat_commands import ApproveRefund, RejectRefund
from domain.chat_commands import button as command_button
from domain.errors import Forbidden, NotFound
from domain.order import Order
from domain.outbox import SMS_REFUND, CustomerText
from handlers.books import book_refund
from handlers.bus import Deps, Router
from handlers.notify import notify_role, notify_user
from handlers.orders import create_order, load_order
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
    refunds = await order_refunds(uow, order, lock=True)
    aftersale = open_aftersale(
        aftersale_no="", order_no=order.order_no, order_amount_fen=order.amount_fen, refunds=refunds,
        kind=cmd.kind, reason=cmd.reason, amount_fen=cmd.amount_fen, requested_by=cmd.by, policy=deps.policy,
        at=deps.now, category=classify(cmd.reason), photos=cmd.photos,
    )
    await uow.aftersales.add(aftersale)
    return aftersale


async def order_refunds(
    uow: UnitOfWork, order: Order, *, lock: bool = False, before: str | None = None
) -> OrderRefunds:
    """What the customer paid for `order` and what its after-sales claim (those opened before `before`, if
    given). With `lock`, a new claim is about to be added: the order's row is locked and its version moved
    first, so two claims opened at once are counted one after the other (PostgreSQL waits on the lock; on
    SQLite the write takes the database's write lock, and a claim that read a stale order is a Conflict)."""
    root_no = order.parent_no or order.order_no
    root = await uow.orders.get(root_no, for_update=lock) if lock or order.parent_no else order
    root = root or order
    if lock:
        await uow.orders.save(root)
    family = [root.order_no, *(child.order_no for child in await uow.orders.children(root.order_no))]
    cases = await uow.aftersales.for_orders(family)
    if before is not None:
        cases = cases[: next((i for i, a in enumerate(cases) if a.aftersale_no == before), len(cases))]
    return OrderRefunds(await _was_paid(uow, root), root.amount_fen, claimed_fen(cases))


async def _was_paid(uow: UnitOfWork, order: Order) -> bool:
    """A cancelled order was paid if its trail ever left 待支付 for any state but 已取消."""
    if order.state not in ("pending_payment", "cancelled"):
        return True
    if order.state == "pending_payment":
        return False
    unpaid = {None, "pending_payment", "cancelled"}
    trail = await uow.history("order", order.order_no)
    return any(row["from_state"] not in unpaid or row["to_state"] not in unpaid for row in trail)


async def _user_roles(uow: UnitOfWork, userid: str) -> frozenset[str]:
    user = await uow.users.get(userid)
    if user is None:
        raise Forbidden("您还不是本系统的用户，请联系管理员开通。")
    return user.roles


@router.command(c.ApproveAfterSale)
async def approve(cmd: c.ApproveAfterSale, uow: UnitOfWork, deps: Deps) -> tuple[AfterSale, bool]:
    """Returns (aftersale, done); done is False while a manager's second approval is still needed."""
    aftersale = await load_aftersale(uow, cmd.aftersale_no)
    refunds = await order_refunds(uow, await load_order(uow, aftersale.order_no), before=aftersale.aftersale_no)
    done = aftersale.approve(
        cmd.by, await _user_roles(uow, cmd.by), deps.policy, deps.now, order_claimed_fen=refunds.claimed_fen
    )
    await uow.aftersales.save(aftersale)
    if done:
        deps.observer.transitions("aftersale", "approve")
    return aftersale, done


@router.command(c.RejectAfterSale)
async def reject(cmd: c.RejectAfterSale, uow: UnitOfWork, deps: Deps) -> AfterSale:
    aftersale = await load_aftersale(uow, cmd.aftersale_no)
    aftersale.reject(cmd.by, await _user_roles(uow, cmd.by), cmd.reason, deps.now)
    await uow.aftersales.save(aftersale)
    deps.observer.transitions("aftersale", "reject")
    return aftersale


def approval_card(aftersale: AfterSale, note: str, stage: str = "supervisor") -> Card:
    """The 同意/拒绝 card; each approval stage has its own task id (WeCom refuses a task id used twice)."""
    return Card(
        title=f"{KIND_TITLES.get(aftersale.kind, '售后')}待审批 {yuan(aftersale.amount_fen)}",
        description=note,
        task_id=f"approve-{aftersale.aftersale_no}" + ("" if stage == "supervisor" else f"-{stage}"),
        fields=(("售后单", aftersale.aftersale_no), ("订单", aftersale.order_no), ("金额", yuan(aftersale.amount_fen)),
                ("原因", _clip(f"{aftersale.category}：{aftersale.reason}" if aftersale.reason else aftersale.category))),
        buttons=(command_button(ApproveRefund, aftersale.aftersale_no, text="同意", style=1),
                 command_button(RejectRefund, aftersale.aftersale_no, text="拒绝", style=2)),
        highlight=True,
    )


KIND_TITLES = {"refund": "退款", "return": "退货退款", "exchange": "换货"}


def _clip(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def name_of(uow: UnitOfWork, userid: str) -> str:
    """What people call `userid`: the user's name, else the id itself (e.g. "system")."""
    user = await uow.users.get(userid)
    return user.name if user is not None and user.name else userid


@router.event(events.AfterSaleOpened)
async def ask_supervisors(event: events.AfterSaleOpened, uow: UnitOfWork, deps: Deps) -> None:
    if not event.needs_approval:
        return
    aftersale = await load_aftersale(uow, event.aftersale_no)
    note = "订单累计售后金额超过复核线，主管同意后还需经理复核。" if event.needs_manager else "请审批。"
    await notify_role(
        uow, deps, "supervisor", approval_card(aftersale, note),
        dedup_key=f"approve:{event.aftersale_no}:supervisor",
    )


@router.event(events.ApprovalRecorded)
async def ask_manager(event: events.ApprovalRecorded, uow: UnitOfWork, deps: Deps) -> None:
    aftersale = await load_aftersale(uow, event.aftersale_no)
    card = approval_card(aftersale, f"主管 {await name_of(uow, event.by)} 已同意，请经理复核。", stage="manager")
    await notify_role(uow, deps, "manager", card, dedup_key=f"approve:{event.aftersale_no}:manager")


@dataclass(frozen=True)
class Strategy:
    """What an approved after-sale sets going. kind: "refund" (refund and return), "replacement" (an exchange
    whose goods the order's store has), "purchase_request" (an exchange it cannot fill yet)."""

    kind: str
    store: str | None = None
    short: tuple[tuple[str, int, int], ...] = ()  # (sku, needed, available) the store cannot fill


async def choose_strategy(aftersale: AfterSale, uow: UnitOfWork) -> Strategy:
    """Decided from the current stock; the chat reply and the reaction ask in the same transaction and agree."""
    if aftersale.kind != "exchange":
        return Strategy("refund")
    order = await load_order(uow, aftersale.order_no)
    needed: dict[str, int] = {}
    for line in order.lines:
        needed[line.sku] = needed.get(line.sku, 0) + line.qty
    available = await uow.inventory.availability(list(needed))
    if order.store is not None:
        have = dict(available.get(order.store, {}))
    else:  # a split parent names no store: any store's stock will do
        have = {sku: sum(stock.get(sku, 0) for stock in available.values()) for sku in needed}
    short = tuple((sku, qty, max(have.get(sku, 0), 0)) for sku, qty in needed.items() if have.get(sku, 0) < qty)
    return Strategy("purchase_request" if short else "replacement", order.store, short)


@router.event(events.RefundApproved)
async def carry_out(event: events.RefundApproved, uow: UnitOfWork, deps: Deps) -> None:
    """The one reaction to an approval (RefundApproved is raised once per case), so nothing is sent twice."""
    aftersale = await load_aftersale(uow, event.aftersale_no)
    strategy = await choose_strategy(aftersale, uow)
    if strategy.kind == "refund":
        await instruct_finance(event, uow, deps)
        await text_refund(event, uow, deps)
        await book_refund(event, uow, deps)  # the red receivable in K3
    elif strategy.kind == "replacement":
        await send_replacement(aftersale, strategy, event, uow, deps)
    else:
        await request_purchase(aftersale, strategy, uow, deps)


async def instruct_finance(event: events.RefundApproved, uow: UnitOfWork, deps: Deps) -> None:
    approvers = "、".join([await name_of(uow, by) for by in event.approvers])
    text = (
        f"售后单 {event.aftersale_no}（订单 {event.order_no}）已同意退款 {yuan(event.amount_fen)}，"
        f"请开具退款凭证。审批人：{approvers}"
    )
    await notify_role(uow, deps, "finance", Reply(text), dedup_key=f"refund:{event.aftersale_no}")


async def text_refund(event: events.RefundApproved, uow: UnitOfWork, deps: Deps) -> None:
    """The customer hears that the refund is approved and on its way."""
    order = await load_order(uow, event.order_no)
    if not order.customer_phone:
        return
    amount = yuan(event.amount_fen)
    await uow.send(CustomerText(
        order.customer_phone, f"您的订单 {order.order_no} 的退款 {amount} 已同意，将原路退回，请留意到账。",
        SMS_REFUND, f"sms:refund:{event.aftersale_no}",
        params=(("order_no", order.order_no), ("amount", f"{event.amount_fen / 100:.2f}")),  # yuan, digits only
        customer_id=order.customer_id, order_no=order.order_no,
    ), at=deps.now)


async def send_replacement(
    aftersale: AfterSale, strategy: Strategy, event: events.RefundApproved, uow: UnitOfWork, deps: Deps
) -> None:
    """A new paid order (channel "aftersale", external id = the after-sale number) for the same goods, to the
    same customer and address; it is allocated to the store at once. Its lines carry no price: a replacement
    is not charged again, so shipping it creates no second receivable."""
    order = await load_order(uow, aftersale.order_no)
    replacement, _ = await create_order(
        c.CreateOrder(
            channel="aftersale", external_id=aftersale.aftersale_no, customer_id=order.customer_id,
            customer_name=order.customer_name, customer_phone=order.customer_phone, address=order.address,
            lines=tuple(c.LineInput(x.sku, x.qty, 0, x.name) for x in order.lines), paid=True,
            store=strategy.store, by=event.approvers[-1], via="aftersale",
        ),
        uow, deps,
    )
    await _tell_requester(
        uow, deps, aftersale,
        f"售后单 {aftersale.aftersale_no} 已同意换货，换货订单 {replacement.order_no} 已安排"
        f"{f'门店 {replacement.store} ' if replacement.store else ''}发货。",
        dedup_key=f"exchange:{aftersale.aftersale_no}",
    )


async def request_purchase(aftersale: AfterSale, strategy: Strategy, uow: UnitOfWork, deps: Deps) -> None:
    """An exchange the store cannot fill: purchasing is asked to restock, and the request stays open as an exception."""
    where = f"门店 {strategy.store} " if strategy.store else ""
    items = "、".join(f"{sku} × {qty}" for sku, qty, _ in strategy.short)
    stock = "、".join(f"{sku} 现有 {have}" for sku, _, have in strategy.short)
    text = f"补货申请：{items}，用于换货 {aftersale.aftersale_no}（订单 {aftersale.order_no}，{where}{stock}）。"
    await notify_role(uow, deps, "purchasing", Reply(text), dedup_key=f"purchase:{aftersale.aftersale_no}")
    for sku, qty, have in strategy.short:
        await uow.incidents.open(
            kind="purchase_request", order_no=aftersale.order_no, sku=sku, store=strategy.store,
            message=f"换货 {aftersale.aftersale_no} 需要 {sku} × {qty}，{where}现有 {have}。", at=deps.now,
        )
    await _tell_requester(
        uow, deps, aftersale,
        f"售后单 {aftersale.aftersale_no} 已同意换货，{items} 暂时缺货，已申请补货，到货后安排发出。",
        dedup_key=f"exchange:{aftersale.aftersale_no}",
    )


@router.event(events.RefundRejected)
async def tell_requester(event: events.RefundRejected, uow: UnitOfWork, deps: Deps) -> None:
    aftersale = await load_aftersale(uow, event.aftersale_no)
    reason = f"，原因：{event.reason}" if event.reason else ""
    await _tell_requester(
        uow, deps, aftersale, f"售后单 {event.aftersale_no} 被 {await name_of(uow, event.by)} 拒绝{reason}。",
        dedup_key=f"rejected:{event.aftersale_no}",
    )


async def _tell_requester(uow: UnitOfWork, deps: Deps, aftersale: AfterSale, text: str, *, dedup_key: str) -> bool:
    """Only a requester who is a user of the bot can be told (an API or channel request has no chat)."""
    if await uow.users.get(aftersale.requested_by) is None:
        return False
    await notify_user(uow, deps, aftersale.requested_by, Reply(text), dedup_key=dedup_key)
    return True
