"""Chat use cases: a parsed chat command from any platform, checked against the sender's roles, run in
one unit of work with its reply, which is committed to the outbox together with the change it reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from domain.chat import Card, Reply
from domain.commands import Command
from domain.errors import DomainError, Forbidden
from domain.users import ROLES, User
from handlers.bus import Deps, Router
from handlers.notify import notify_user
from integrations.db import inbox
from integrations.db.uow import UnitOfWork

router = Router()

UNKNOWN_USER = "您好，您还没有开通订单助手。请联系运营经理为您添加账号。"


@dataclass(frozen=True)
class ChatRequest(Command):
    """What someone asked in chat, already parsed by the edge. `by` is the platform's user id."""

    by: str
    via: str  # the platform: "wecom" | "dingtalk" | "console"
    message_id: str
    verb: str = ""
    args: tuple[str, ...] = ()
    answer: str = ""  # a ready answer (a parse error, the help text) when there is no verb to run
    response_code: str = ""  # a card click's code: the card is updated once the decision is made
    task_id: str = ""
    facts: Any = None  # what the verb's `prepare` looked up before the transaction opened (an address check)

    async def prepare(self, deps: Deps) -> ChatRequest:
        """Run by the bus outside the transaction: a verb that must ask the network first does it here."""
        spec = verb.verbs.get(self.verb)
        if spec is None or spec.prepare is None or self.facts is not None:
            return self
        return dataclasses.replace(self, facts=await spec.prepare(self, deps))

    async def on_refused(self, uow: UnitOfWork, err: DomainError, deps: Deps) -> None:
        """The refusal is the answer: say why in one sentence, and mark the message handled."""
        await inbox.claim(uow.conn, self.via, self.message_id, deps.now)
        user = await resolve_user(uow, self.via, self.by)
        await notify_user(uow, deps, user.userid if user else self.by, Reply(err.reason),
                          dedup_key=f"reply:{self.via}:{self.message_id}")


VerbRun = Callable[[ChatRequest, User, UnitOfWork, Deps], Awaitable["Reply | Card | list[Reply | Card]"]]
VerbPrepare = Callable[[ChatRequest, Deps], Awaitable[Any]]


@dataclass(frozen=True)
class Verb:
    name: str
    roles: frozenset[str]
    run: VerbRun
    label: str = ""
    prepare: VerbPrepare | None = None  # network look-ups before the transaction; the run reads req.facts


@dataclass
class VerbTable:
    """Chat verbs registered by decorator, each naming the roles that may run it."""

    verbs: dict[str, Verb] = field(default_factory=dict)

    def __call__(
        self, name: str, *roles: str, label: str = "", prepare: VerbPrepare | None = None
    ) -> Callable[[VerbRun], VerbRun]:
        def register(run: VerbRun) -> VerbRun:
            if name in self.verbs:
                raise ValueError(f"chat verb {name} registered twice")
            self.verbs[name] = Verb(name, frozenset(roles), run, label or name, prepare)
            return run

        return register


verb = VerbTable()


async def resolve_user(uow: UnitOfWork, platform: str, platform_id: str) -> User | None:
    return await uow.users.by_platform_id(platform, platform_id)


@router.command(ChatRequest)
async def handle_chat(req: ChatRequest, uow: UnitOfWork, deps: Deps) -> list[Reply | Card] | None:
    """Returns what was answered, or None when this message was already handled (a retry)."""
    if not await inbox.claim(uow.conn, req.via, req.message_id, deps.now):
        return None
    user = await resolve_user(uow, req.via, req.by)
    if user is None:
        await uow.audit(actor=req.by, via=req.via, entity="user", entity_id=req.by, action=req.verb or "chat",
                        at=deps.now, outcome="refused", reason="unknown user")
        replies: list[Reply | Card] = [Reply(UNKNOWN_USER)]
        await _answer(uow, deps, req, req.by, replies)
        return replies
    if req.answer:
        replies = [Reply(req.answer)]
    else:
        spec = verb.verbs.get(req.verb)
        if spec is None:
            raise Forbidden(f"“{req.verb}”暂不支持，发送“帮助”查看可用命令。")
        if not user.has(*spec.roles):
            allowed = "、".join(ROLES[r] for r in sorted(spec.roles))
            raise Forbidden(f"“{spec.label}”只有{allowed}可以使用，您的角色是{_roles(user)}。")
        result = await spec.run(req, user, uow, deps)
        replies = result if isinstance(result, list) else [result]
    await _answer(uow, deps, req, user.userid, replies)
    return replies


async def _answer(uow: UnitOfWork, deps: Deps, req: ChatRequest, userid: str, replies: list[Reply | Card]) -> None:
    for i, reply in enumerate(replies):
        await notify_user(uow, deps, userid, reply, dedup_key=f"reply:{req.via}:{req.message_id}:{i}")


def _roles(user: User) -> str:
    return "、".join(ROLES.get(r, r) for r in sorted(user.roles))
