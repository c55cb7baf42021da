"""Chat use cases behind one pipeline: every chat command passes the same middleware around its handler.

In the unit of work: the inbox claim (a retry of a handled message does nothing), the user lookup (a
stranger is refused politely and audited), the role check from the command's declaration, the record
the command names (loaded once, with the own-store rule), then the handler, the card update after a
click, and the answer — committed to the outbox together with the change it reports. A refusal rolls all
of that back; the bus then audits it and `answer_refusal` says why in one sentence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from domain.chat import Card, Reply
from domain.chat_commands import DESK, ChatCommand, ChatOutcome
from domain.clock import hhmm
from domain.errors import DomainError, Forbidden
from domain.facts import SenderRefused
from domain.limits import DEDUP_KEY_CHARS
from domain.order import Order
from domain.outbox import CardUpdate, ReplyTo
from domain.users import ROLES, User
from handlers import worklists
from handlers.bus import Deps, Router
from handlers.notify import notify_role, notify_user
from handlers.orders import load_order
from integrations.db.uow import UnitOfWork

UNKNOWN_USER = "您好，您还没有开通订单助手。请联系运营经理为您添加账号。"
DISABLED_USER = "您的订单助手账号已停用。如需恢复，请联系运营经理。"

Answer = Reply | Card | list[Reply | Card]


@dataclass
class ChatContext:
    user: User
    uow: UnitOfWork
    deps: Deps
    order: Order | None = None  # the order an "order" argument names, loaded and store-checked
    incident: Any = None  # the 异常 an "incident" argument names, loaded and store-checked
    facts: Any = None  # what the command's `before` step looked up outside the transaction

    @property
    def the_order(self) -> Order:
        assert self.order is not None, "declared with an order argument"
        return self.order


ChatHandler = Callable[[Any, ChatContext], Awaitable[Answer]]
H = TypeVar("H", bound=ChatHandler)
Before = Callable[[Any, Deps], Awaitable[Any]]


class ChatRouter:
    """Chat handlers registered by decorator, one per declared command; each runs inside the pipeline."""

    def __init__(self) -> None:
        self.router = Router()

    def handles(self, kind: type[ChatCommand], *, before: Before | None = None) -> Callable[[H], H]:
        def register(handler: H) -> H:
            async def run(cmd: ChatCommand, uow: UnitOfWork, deps: Deps, facts: Any = None) -> ChatOutcome:
                return await run_pipeline(cmd, uow, deps, handler, facts)

            self.router.command(kind, before=before)(run)
            return handler

        return register


async def run_pipeline(
    cmd: ChatCommand, uow: UnitOfWork, deps: Deps, handler: ChatHandler, facts: Any = None
) -> ChatOutcome:
    if not await uow.inbox.claim(cmd.via, cmd.message_id, deps.now):
        return ChatOutcome(duplicate=True)  # a retry, or another replica, handled it already
    user = await uow.users.by_platform_id(cmd.via, cmd.by)
    if user is None or not user.active:
        text, why = (UNKNOWN_USER, "unknown user") if user is None else (DISABLED_USER, "disabled user")
        uow.emit(SenderRefused(cmd.by, cmd.action(), why))
        await _answer(uow, deps, cmd, user.userid if user else cmd.by, [Reply(text)])
        return ChatOutcome((Reply(text),))
    spec = cmd.spec
    if not user.has(*spec.roles):
        allowed = "、".join(ROLES[r] for r in sorted(spec.roles))
        raise Forbidden(f"“{spec.zh}”只有{allowed}可以使用，您的角色是{_roles(user)}。")
    ctx = ChatContext(user, uow, deps, facts=facts)
    await _load_subject(cmd, ctx)
    result = await handler(cmd, ctx)
    replies = result if isinstance(result, list) else [result]
    if cmd.response_code and spec.done:
        await _mark_clicked(cmd, user, spec.done, uow, deps)
    await _answer(uow, deps, cmd, user.userid, replies)
    return ChatOutcome(tuple(replies))


async def _load_subject(cmd: ChatCommand, ctx: ChatContext) -> None:
    """The record the command names, once, with the own-store rule of its declaration."""
    user, own_store = ctx.user, cmd.spec.own_store and not ctx.user.has(*DESK)
    for arg in cmd.spec.args:
        value = getattr(cmd, arg.name)
        if arg.kind == "order":
            ctx.order = order = await load_order(ctx.uow, value)
            if own_store and order.store != user.store:
                if order.store is None:
                    raise Forbidden(f"订单 {order.order_no} 还没有分配到门店，仓管暂不能操作，请联系主管。")
                raise Forbidden(
                    f"订单 {order.order_no} 属于门店 {order.store}，您只能操作本门店（{user.store or '未绑定'}）的订单。"
                )
        elif arg.kind == "incident":
            ctx.incident = row = await worklists.load_exception(ctx.uow, value)
            if own_store:
                store = await worklists.exception_store(ctx.uow, row)
                if store != user.store:
                    raise Forbidden(
                        f"异常 #{row.id} 属于{f'门店 {store}' if store else '总部'}，"
                        f"仓管只能处理本门店（{user.store or '未绑定'}）的异常。"
                    )


async def _mark_clicked(cmd: ChatCommand, user: User, done: str, uow: UnitOfWork, deps: Deps) -> None:
    """A command from a card button turns that card's buttons into who did it and when."""
    await uow.send(CardUpdate(user.userid, cmd.response_code, f"{done} · {user.name} {hhmm(deps.now)}"), at=deps.now)


router = Router()  # what every chat command shares: the answer to a refusal


@router.refusal(ChatCommand)
async def answer_refusal(cmd: ChatCommand, uow: UnitOfWork, err: DomainError, deps: Deps) -> ChatOutcome:
    """The refusal is the answer: say why in one sentence, and mark the message handled."""
    await uow.inbox.claim(cmd.via, cmd.message_id, deps.now)
    user = await uow.users.by_platform_id(cmd.via, cmd.by)
    await notify_user(uow, deps, user.userid if user else cmd.by, Reply(err.reason),
                      dedup_key=_reply_key(cmd), reply_to=_origin(cmd))
    return ChatOutcome((Reply(err.reason),), refused=err.reason)


async def _answer(uow: UnitOfWork, deps: Deps, cmd: ChatCommand, userid: str, replies: list[Reply | Card]) -> None:
    for i, reply in enumerate(replies):
        await notify_user(uow, deps, userid, reply, dedup_key=_reply_key(cmd, f":{i}"),
                          reply_to=_origin(cmd))


@dataclass(frozen=True)
class DeadMessage:
    """A message parked after its last failed attempt, as the managers' digest names it."""

    platform: str
    message_id: str
    sender: str
    text: str
    attempts: int


DIGEST_LINES = 10


async def report_dead_messages(uow: UnitOfWork, deps: Deps, dead: list[DeadMessage]) -> None:
    """One digest to the managers, in the transaction that parks the messages: told once, never again."""
    if not dead:
        return
    lines = [f"有 {len(dead)} 条消息多次处理失败，已停止重试（详见日志）："]
    for m in dead[:DIGEST_LINES]:
        said = m.text if len(m.text) <= 20 else m.text[:20] + "…"
        lines.append(f"· {m.sender[:64]}（{m.platform}）：{said or '（无文字）'}，已试 {m.attempts} 次")
    if len(dead) > DIGEST_LINES:
        lines.append(f"……另有 {len(dead) - DIGEST_LINES} 条")
    keys = ",".join(f"{m.platform}:{m.message_id}" for m in dead)
    await notify_role(uow, deps, "manager", Reply("\n".join(lines)),
                      dedup_key=f"dead_messages:{hashlib.sha256(keys.encode()).hexdigest()[:40]}")


def _reply_key(cmd: ChatCommand, suffix: str = "") -> str:
    """The outbox de-dup key of an answer; a message id near its own limit (128) is hashed so the key fits."""
    key = f"reply:{cmd.via}:{cmd.message_id}{suffix}"
    if len(key) <= DEDUP_KEY_CHARS:
        return key
    return f"reply:{cmd.via}:{hashlib.sha256(cmd.message_id.encode()).hexdigest()}{suffix}"


def _origin(cmd: ChatCommand) -> ReplyTo:
    return ReplyTo(cmd.via, cmd.message_id)


def _roles(user: User) -> str:
    return "、".join(ROLES.get(r, r) for r in sorted(user.roles))
