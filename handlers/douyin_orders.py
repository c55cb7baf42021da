"""Douyin shop orders in: a push applied once per msg_id, and the catch-up pull by update time.

A push is only a hint: the order is read from order.orderDetail (in the command's `before` step, outside the
transaction) and then, in one unit of work with the inbox claim, created (idempotent on channel + external id)
and brought to what the push says: 101 paid, 105 the new address (the 改地址 path, map check included),
106 cancelled, 200 an after-sale request. A refusal (say, an address change after shipping) is audited, the
push is marked handled, and customer service is told why. A push that cannot be mapped raises MappingError:
the inbound queue parks it as dead at once, with a report to the managers.

The catch-up job reads order.searchList by update time from the stored cursor, page after page, each page
stored in a unit of work of its own before the cursor moves past it: a crash re-reads a page (orders are
idempotent), and a day of downtime is recovered without duplicates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from domain import commands as c
from domain.chat import Reply
from domain.commands import Command
from domain.errors import DomainError
from domain.order import Order
from handlers.address_check import RequestAddressChange, check_address, request_address_change
from handlers.aftersales import open_case
from handlers.bus import Deps, Router
from handlers.notify import notify_role
from handlers.orders import create_order, fire_order_trigger
from integrations.channels import MappingError
from integrations.channels.douyin import DouyinFeed
from integrations.channels.douyin.client import SEARCH_PAGE_SIZE
from integrations.channels.douyin.mapping import CHANNEL, is_cancelled, is_paid, to_create_order
from integrations.channels.douyin.push import (
    ADDRESS_CHANGED,
    REFUND_CREATED,
    TAGS,
    TradeEvent,
    element_of,
    parse_event,
)
from integrations.db.uow import UnitOfWork
from integrations.geo import AddressCheck

log = logging.getLogger(__name__)
router = Router()
# aftersale_type: 0 退货退款, 1 已发货仅退款, 2 未发货仅退款, 3 换货
AFTERSALE_KINDS = {0: "return", 1: "refund", 2: "refund", 3: "exchange"}


@dataclass(frozen=True)
class ApplyDouyinPush(Command["PushOutcome"]):
    message_id: str
    element: str  # the push element as stored in the inbox: {"tag", "msg_id", "data"}
    by: str = "douyin"
    via: str = "douyin"

    def subject(self) -> tuple[str, str]:
        return "douyin_push", self.message_id[:64]


@dataclass(frozen=True)
class PushFacts:
    event: TradeEvent
    order: c.CreateOrder
    paid: bool
    cancelled: bool
    address_check: AddressCheck | None = None


@dataclass(frozen=True)
class PushOutcome:
    order_no: str = ""
    created: bool = False
    duplicate: bool = False
    refused: str = ""
    aftersale_no: str = ""


def feed_of(deps: Deps) -> DouyinFeed:
    if deps.douyin is None:
        raise RuntimeError("the Douyin channel is not configured (DOUYIN__APP_KEY, APP_SECRET, SHOP_ID)")
    return deps.douyin


async def read_order(cmd: ApplyDouyinPush, deps: Deps) -> PushFacts:
    """Outside the transaction: what the push names, and the order as Douyin has it now."""
    try:
        element = element_of(cmd.element)
    except (ValueError, KeyError, TypeError) as err:
        raise MappingError(CHANNEL, "element", "推送消息不完整") from err
    event = parse_event(element)
    feed = feed_of(deps)
    detail = await feed.orders.order_detail(event.shop_order_id)
    order = to_create_order(detail, store=feed.store)
    check = await check_address(deps, order.address) if event.tag == ADDRESS_CHANGED else None
    return PushFacts(event, order, is_paid(detail), is_cancelled(detail), check)


@router.command(ApplyDouyinPush, before=read_order)
async def apply_push(cmd: ApplyDouyinPush, uow: UnitOfWork, deps: Deps, facts: PushFacts) -> PushOutcome:
    if not await uow.inbox.claim(CHANNEL, cmd.message_id, deps.now):
        return PushOutcome(duplicate=True)  # a re-sent copy, or another replica, handled it already
    order, created = await create_order(facts.order, uow, deps)
    await _follow(order, paid=facts.paid, cancelled=facts.cancelled, uow=uow, deps=deps)
    event = facts.event
    if event.tag == ADDRESS_CHANGED and not created and order.address != facts.order.address.strip():
        await request_address_change(
            RequestAddressChange(order.order_no, facts.order.address, by=cmd.by, via=cmd.via), uow, deps,
            facts.address_check,
        )
    aftersale_no = ""
    if event.tag == REFUND_CREATED:
        reason = f"抖店售后申请 {event.aftersale_id}（原因码 {event.reason_code}）"
        kind = AFTERSALE_KINDS.get(event.aftersale_type, "refund")
        aftersale = await open_case(c.OpenAfterSale(order.order_no, kind, reason, event.refund_amount_fen,
                                                    by=cmd.by, via=cmd.via), uow, deps)
        aftersale_no = aftersale.aftersale_no
    return PushOutcome(order.order_no, created, aftersale_no=aftersale_no)


async def _follow(order: Order, *, paid: bool, cancelled: bool, uow: UnitOfWork, deps: Deps) -> None:
    """Bring a known order to what Douyin says: paid (then allocated), or cancelled."""
    if paid and order.state == "pending_payment" and not cancelled:
        await fire_order_trigger(c.FireOrderTrigger(order.order_no, "pay", by="douyin", via=CHANNEL), uow, deps)
    if cancelled and order.state != "cancelled":
        await fire_order_trigger(c.FireOrderTrigger(order.order_no, "cancel", by="douyin", via=CHANNEL,
                                                    reason="抖店订单已取消"), uow, deps)


@router.refusal(ApplyDouyinPush)
async def push_refused(cmd: ApplyDouyinPush, uow: UnitOfWork, err: DomainError, deps: Deps) -> PushOutcome:
    """Refused for good (the bus audited why): marked handled, and customer service is told."""
    await uow.inbox.claim(CHANNEL, cmd.message_id, deps.now)
    try:
        element = element_of(cmd.element)
        what, order_id = TAGS.get(element.tag, element.tag), parse_event(element).shop_order_id
    except (ValueError, KeyError, TypeError):
        what, order_id = "推送", ""
    text = f"抖店{what}（订单 {order_id}）未能处理：{err.reason}"
    if not await notify_role(uow, deps, "service", Reply(text), dedup_key=f"douyin:{cmd.message_id}"[:100]):
        await notify_role(uow, deps, "supervisor", Reply(text), dedup_key=f"douyin:{cmd.message_id}"[:100])
    log.info("douyin push %s refused: %s", cmd.message_id, err.reason)
    return PushOutcome(refused=err.reason)


# ---- catch-up


@dataclass(frozen=True)
class StoreDouyinOrders(Command["StoreOutcome"]):
    """One page of searchList in one unit of work: new orders created, known ones brought up to date."""

    orders: tuple[tuple[c.CreateOrder, bool, bool], ...]  # (order, paid, cancelled)
    by: str = "douyin_catch_up"
    via: str = "job"


@dataclass
class StoreOutcome:
    created: int = 0
    known: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # external id -> reason


@router.command(StoreDouyinOrders)
async def store_orders(cmd: StoreDouyinOrders, uow: UnitOfWork, deps: Deps) -> StoreOutcome:
    outcome = StoreOutcome()
    for create, paid, cancelled in cmd.orders:
        try:
            order, created = await create_order(create, uow, deps)
            await _follow(order, paid=paid, cancelled=cancelled, uow=uow, deps=deps)
        except DomainError as err:  # checked before anything of that order is written
            outcome.refused[create.external_id] = err.reason
            continue
        if created:
            outcome.created += 1
        else:
            outcome.known += 1
    return outcome


@dataclass(frozen=True)
class CatchUpDouyinOrders(Command["CatchUpReport"]):
    first_lookback: timedelta = timedelta(days=1)  # with no cursor yet
    overlap: timedelta = timedelta(minutes=5)  # re-read before the cursor: an update Douyin recorded late
    lag: timedelta = timedelta(seconds=60)  # not closer to now than this
    page_size: int = SEARCH_PAGE_SIZE
    max_pages: int = 2000
    by: str = "douyin_catch_up"
    via: str = "job"


@dataclass
class CatchUpReport:
    pages: int = 0
    read: int = 0
    created: int = 0
    known: int = 0
    unmapped: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    cursor: str = ""

    def summary(self) -> str:
        return (f"抖店补单：读取 {self.read} 单（{self.pages} 页），新建 {self.created}，已有 {self.known}，"
                f"无法映射 {len(self.unmapped)}，被拒 {len(self.refused)}；游标 {self.cursor}")


@router.command(CatchUpDouyinOrders)
async def catch_up(cmd: CatchUpDouyinOrders, uow: UnitOfWork, deps: Deps) -> CatchUpReport:
    """Keyset paging on update_time: each query starts at the newest update time stored so far (inclusive, so
    orders sharing it are read again, harmlessly); a full page that all shares its start pages on."""
    feed, dispatch = feed_of(deps), deps.dispatch
    if dispatch is None:
        raise RuntimeError("the catch-up runs through the bus (build_bus sets deps.dispatch)")
    now = int(deps.now.timestamp())
    stored = await feed.cursors.get(CHANNEL)
    start = int(stored) - int(cmd.overlap.total_seconds()) if stored else now - int(cmd.first_lookback.total_seconds())
    end = now - int(cmd.lag.total_seconds())
    report = CatchUpReport(cursor=stored or "")
    if end <= start:
        return report
    page = 0
    while report.pages < cmd.max_pages:
        found, _total = await feed.orders.search_orders(update_start=start, update_end=end, page=page,
                                                        size=cmd.page_size)
        report.pages += 1
        report.read += len(found)
        if found:
            await _store_page(found, feed, dispatch, report)
            top = max(_update_time(o) for o in found)
            if top > start:
                start, page = top, 0
                await feed.cursors.put(CHANNEL, str(top), deps.now)  # only after the page is stored
            else:
                page += 1
        if len(found) < cmd.page_size:
            break
    else:
        log.warning("douyin catch-up stopped after %d pages; the next run goes on from %s", cmd.max_pages, start)
        report.cursor = str(start)
        return report
    await feed.cursors.put(CHANNEL, str(end), deps.now)
    report.cursor = str(end)
    return report


async def _store_page(found: list[dict[str, Any]], feed: DouyinFeed, dispatch: Any, report: CatchUpReport) -> None:
    batch = []
    for detail in found:
        try:
            batch.append((to_create_order(detail, store=feed.store), is_paid(detail), is_cancelled(detail)))
        except MappingError as err:
            report.unmapped[str(detail.get("order_id", "?"))] = str(err)
            log.warning("douyin catch-up: order %s not mapped: %s", detail.get("order_id"), err)
    if batch:
        stored: StoreOutcome = await dispatch(StoreDouyinOrders(tuple(batch)))
        report.created += stored.created
        report.known += stored.known
        report.refused.update(stored.refused)


def _update_time(detail: dict[str, Any]) -> int:
    value = detail.get("update_time")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
