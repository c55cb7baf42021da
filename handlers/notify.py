"""Pushing messages to people: one outbox row per recipient, committed with the change that caused it."""

from __future__ import annotations

from domain.chat import Card, Reply
from domain.outbox import ChatPush, ReplyTo
from handlers.bus import Deps
from handlers.unit_of_work import AbstractUnitOfWork


async def notify_user(
    uow: AbstractUnitOfWork, deps: Deps, userid: str, message: Reply | Card, *, dedup_key: str | None = None,
    reply_to: ReplyTo | None = None, urgent: bool = False,
) -> None:
    """`urgent`: an exception push (see domain.outbox.ChatPush) — never waits behind routine messages."""
    await uow.send(ChatPush(userid, message, dedup_key, reply_to, urgent), at=deps.now)


async def notify_role(
    uow: AbstractUnitOfWork, deps: Deps, role: str, message: Reply | Card, *, store: str | None = None,
    dedup_key: str | None = None, urgent: bool = False,
) -> list[str]:
    """Push to everyone with `role` (in `store`, when given). Returns who was told."""
    users = await uow.users.list(role=role, store=store)
    for user in users:
        key = f"{dedup_key}:{user.userid}" if dedup_key else None
        await notify_user(uow, deps, user.userid, message, dedup_key=key, urgent=urgent)
    return [u.userid for u in users]
