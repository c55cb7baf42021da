"""Every chat command, declared once: its Chinese and English names, arguments, roles, usage and help.

A command is a frozen dataclass whose fields after the common ones are its arguments, each declared with
`arg(...)`. `@declare(...)` puts it in the one table (`COMMANDS`) that the parser, `帮助`, the usage hint
after a wrong argument, the rate limiter's digest text and the card button keys all read.

Every argument carries its limit from domain/limits.py (by its kind, or named for free text), so the parser
refuses a value the REST API or a column would refuse, before anything is looked up or stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from domain import limits
from domain.chat import Button, Card, Reply
from domain.commands import Command
from domain.limits import Limit
from domain.order_lifecycle import ORDER_LIFECYCLE
from domain.questions import STOCK_ROLES
from domain.users import ROLES

ArgKind = Literal["order", "waybill", "aftersale", "incident", "customer", "user", "word", "text"]
UPPERCASE: frozenset[str] = frozenset({"order", "waybill", "aftersale", "incident", "customer"})  # ids typed any case
EVERYONE = frozenset(ROLES)
FLOOR = frozenset({"warehouse", "supervisor"})
DESK = frozenset({"supervisor", "manager"})

# The limit of each kind of argument; free text ("text") names its own (an address is not a reason).
KIND_LIMITS: dict[str, Limit] = {
    "order": limits.ORDER_NO, "waybill": limits.WAYBILL, "aftersale": limits.AFTERSALE_NO,
    "incident": limits.INCIDENT_NO, "customer": limits.CUSTOMER_REF, "user": limits.USERID,
    "word": limits.CHAT_WORD,
}


@dataclass(frozen=True)
class Arg:
    name: str  # the command's field
    label: str  # what the user calls it, e.g. 单号
    kind: ArgKind
    optional: bool = False
    rest: bool = False  # free text running to the end of the line (an address, a reason)
    limit: Limit = limits.NOTE  # what a value may be: length and pattern, from domain/limits.py

    def problem(self, value: str) -> str | None:
        """None when `value` is acceptable for this argument, else the refusal in one Chinese sentence."""
        return self.limit.problem(value)


def arg(label: str, kind: ArgKind, *, optional: bool = False, rest: bool = False, limit: Limit | None = None) -> Any:
    """A command field that is typed by the user; optional arguments default to "".

    Free text must name its limit; every other kind has one (KIND_LIMITS)."""
    if limit is None:
        if kind not in KIND_LIMITS:
            raise ValueError(f"argument {label} of kind {kind} needs a limit")
        limit = KIND_LIMITS[kind]
    meta = {"arg": (label, kind, optional, rest, limit)}
    if optional:
        return field(default="", metadata=meta)
    return field(metadata=meta)


@dataclass(frozen=True)
class ChatOutcome:
    """What the bus returns for a chat command: the answers sent, or that the message was handled before."""

    replies: tuple[Reply | Card, ...] = ()
    duplicate: bool = False
    refused: str = ""  # the reason, when the answer is a refusal


@dataclass(frozen=True, kw_only=True)
class ChatCommand(Command[ChatOutcome]):
    """What someone asked in chat, parsed by the edge. `by` is the platform's user id."""

    by: str
    via: str  # the platform: "wecom" | "dingtalk" | "console"
    message_id: str
    response_code: str = ""  # a card click's code: the card is updated once the command succeeds
    task_id: str = ""

    spec: ClassVar[CommandSpec]

    @property
    def arguments(self) -> tuple[str, ...]:
        return tuple(getattr(self, a.name) for a in self.spec.args)

    def subject(self) -> tuple[str, str]:
        """What the command is about, for the audit trail: its first argument's record."""
        for a in self.spec.args:
            if a.kind in SUBJECTS and getattr(self, a.name):
                return SUBJECTS[a.kind], str(getattr(self, a.name))
        return "user", self.by

    def action(self) -> str:
        return self.spec.name


SUBJECTS: dict[str, str] = {
    "order": "order", "aftersale": "aftersale", "incident": "exception", "customer": "customer", "user": "user",
}


@dataclass(frozen=True)
class CommandSpec:
    name: str  # canonical English name: the English alias and the card button key
    zh: str  # the Chinese form shown in usage and help
    purpose: str  # one short line for the help reply
    roles: frozenset[str]
    command: type[ChatCommand]
    args: tuple[Arg, ...] = ()
    synonyms: tuple[str, ...] = ()  # other words people type for it
    own_store: bool = False  # warehouse staff act only on their own store's records; supervisors on any
    done: str = ""  # what a clicked card's button turns into ("已同意 · 李敏 10:42")
    typed: bool = True  # False: reached only by an event (a scan), never typed, not in 帮助

    @property
    def forms(self) -> tuple[str, ...]:
        return (self.zh, self.name, *self.synonyms)

    @property
    def usage(self) -> str:
        return " ".join([self.zh, *(f"[{a.label}]" if a.optional else f"<{a.label}>" for a in self.args)])

    def build(self, values: tuple[str, ...], **common: str) -> ChatCommand:
        named = {a.name: v for a, v in zip(self.args, values, strict=False)}
        return self.command(**common, **named)


C = TypeVar("C", bound=type[ChatCommand])


class CommandTable:
    def __init__(self) -> None:
        self._specs: dict[str, CommandSpec] = {}

    def declare(
        self, name: str, zh: str, purpose: str, *, roles: frozenset[str], synonyms: tuple[str, ...] = (),
        own_store: bool = False, done: str = "", typed: bool = True,
    ) -> Callable[[C], C]:
        def register(command: C) -> C:
            if name in self._specs:
                raise ValueError(f"chat command {name} declared twice")
            args = tuple(
                Arg(f.name, *f.metadata["arg"]) for f in dataclasses.fields(command) if "arg" in f.metadata
            )
            spec = CommandSpec(name, zh, purpose, roles, command, args, synonyms, own_store, done, typed)
            command.spec = spec
            self._specs[name] = spec
            return command

        return register

    def __iter__(self) -> Iterator[CommandSpec]:
        return iter(self._specs.values())

    def __getitem__(self, name: str) -> CommandSpec:
        return self._specs[name]

    def get(self, name: str) -> CommandSpec | None:
        return self._specs.get(name)

    @property
    def typed(self) -> tuple[CommandSpec, ...]:
        return tuple(s for s in self if s.typed)

    def zh_text(self, key: str) -> str:
        """A button's command as a person would type it: "approve AS000012" → "同意 AS000012"."""
        name, _, rest = key.partition(" ")
        spec = self._specs.get(name)
        return " ".join(part for part in (spec.zh if spec else name, rest) if part)


COMMANDS = CommandTable()
declare = COMMANDS.declare


def button(command: type[ChatCommand], *args: str, text: str = "", style: int = 1) -> Button:
    """A card button that runs `command` with `args` when tapped (its key is the command as typed)."""
    spec = command.spec
    return Button(" ".join([spec.name, *args]), text or spec.zh, style)


def help_text() -> str:
    lines = ["可以发这些命令（中文或英文）："]
    for spec in COMMANDS.typed:  # two short lines each: a phone shows about 16 Chinese characters a line
        lines += [spec.usage, f"　{spec.purpose} · {spec.name}"]
    lines += ["<> 必填，[] 可不填", "例：查询 OB00000012", "也可直接问：今天几单没发？"]
    return "\n".join(lines)


# ---- the commands, in the order 帮助 lists them

@declare("status", "查询", "查订单状态", roles=EVERYONE, synonyms=("状态", "查"))
@dataclass(frozen=True, kw_only=True)
class QueryOrder(ChatCommand):
    order_no: str = arg("单号", "order")


@declare("pick", "拣货", "开始拣货", roles=FLOOR, own_store=True, done=ORDER_LIFECYCLE.done_label("pick"))
@dataclass(frozen=True, kw_only=True)
class StartPicking(ChatCommand):
    order_no: str = arg("单号", "order")


@declare("check", "质检", "拣完，送质检", roles=FLOOR, own_store=True, done=ORDER_LIFECYCLE.done_label("check"))
@dataclass(frozen=True, kw_only=True)
class SendToCheck(ChatCommand):
    order_no: str = arg("单号", "order")


@declare("pack", "打包", "打包，可录运单号", roles=FLOOR, own_store=True, done=ORDER_LIFECYCLE.done_label("pack"))
@dataclass(frozen=True, kw_only=True)
class PackOrder(ChatCommand):
    order_no: str = arg("单号", "order")
    waybill: str = arg("运单号", "waybill", optional=True)


@declare("ship", "发货", "扫码出库", roles=FLOOR, own_store=True, done=ORDER_LIFECYCLE.done_label("ship"), synonyms=("出库",))
@dataclass(frozen=True, kw_only=True)
class ShipOrder(ChatCommand):
    order_no: str = arg("单号", "order")
    waybill: str = arg("运单号", "waybill", optional=True)


@declare("address", "改地址", "改收货地址", roles=frozenset({"service", "supervisor", "manager"}))
@dataclass(frozen=True, kw_only=True)
class ChangeOrderAddress(ChatCommand):
    order_no: str = arg("单号", "order")
    new_address: str = arg("新地址", "text", rest=True, limit=limits.ADDRESS)


@declare("relabel", "确认改签", "改址后确认新运单", roles=FLOOR, own_store=True, done="已确认改签")
@dataclass(frozen=True, kw_only=True)
class ConfirmNewWaybill(ChatCommand):
    order_no: str = arg("单号", "order")
    waybill: str = arg("新运单号", "waybill", optional=True)  # not typed when the new e-waybill was issued


@declare("reprint", "重打", "重打面单或重新取号", roles=FLOOR, own_store=True, done="已重打")
@dataclass(frozen=True, kw_only=True)
class ReprintLabel(ChatCommand):
    order_no: str = arg("单号", "order")


@declare("approve", "同意", "同意售后退款", roles=DESK, done="已同意", synonyms=("退款同意", "批准", "通过"))
@dataclass(frozen=True, kw_only=True)
class ApproveRefund(ChatCommand):
    aftersale_no: str = arg("售后单号", "aftersale")


@declare("reject", "拒绝", "拒绝售后退款", roles=DESK, done="已拒绝", synonyms=("驳回",))
@dataclass(frozen=True, kw_only=True)
class RejectRefund(ChatCommand):
    aftersale_no: str = arg("售后单号", "aftersale")
    reason: str = arg("原因", "text", optional=True, rest=True, limit=limits.REASON)


@declare("ack", "确认", "认领异常", roles=DESK | {"warehouse"}, own_store=True)
@dataclass(frozen=True, kw_only=True)
class AcknowledgeIncident(ChatCommand):
    incident_no: str = arg("异常编号", "incident")


@declare("resolve", "解决", "异常已处理", roles=DESK | {"warehouse"}, own_store=True)
@dataclass(frozen=True, kw_only=True)
class ResolveIncident(ChatCommand):
    incident_no: str = arg("异常编号", "incident")
    note: str = arg("说明", "text", optional=True, rest=True, limit=limits.NOTE)


@declare("release", "解冻", "解除客户结算冻结", roles=DESK)
@dataclass(frozen=True, kw_only=True)
class ReleaseSettlementHold(ChatCommand):
    customer: str = arg("客户", "customer")


@declare("sms", "短信", "客户短信停发或恢复", roles=DESK | {"service"})
@dataclass(frozen=True, kw_only=True)
class SetCustomerSms(ChatCommand):
    customer: str = arg("客户", "customer")
    switch: str = arg("停发|恢复", "word")


@declare("user", "用户", "停用或启用员工账号", roles=frozenset({"manager"}))
@dataclass(frozen=True, kw_only=True)
class SetUserActive(ChatCommand):
    userid: str = arg("账号", "user")
    switch: str = arg("停用|启用", "word")


@declare("tasks", "待办", "我的待办", roles=EVERYONE, synonyms=("任务",))
@dataclass(frozen=True, kw_only=True)
class ShowTasks(ChatCommand):
    pass


@declare("exceptions", "异常", "未处理的异常", roles=DESK)
@dataclass(frozen=True, kw_only=True)
class ListIncidents(ChatCommand):
    pass


@declare("summary", "概况", "今日概况", roles=DESK)
@dataclass(frozen=True, kw_only=True)
class ShowSummary(ChatCommand):
    pass


@declare("stock", "库存", "查配件库存", roles=STOCK_ROLES, synonyms=("存货",))
@dataclass(frozen=True, kw_only=True)
class StockLookup(ChatCommand):
    part: str = arg("SKU或名称", "word", limit=limits.PRODUCT_NAME)
    store: str = arg("门店", "word", optional=True)
    question: Any = None  # the understander's reading of part and store (bot/understanding.py), when it had one


@declare("ask", "问", "直接提问", roles=EVERYONE, done="已选")
@dataclass(frozen=True, kw_only=True)
class AskQuestion(ChatCommand):
    """A plain question: typed after 问, tapped on a choice card, or any text that is no command."""

    text: str = arg("问题", "text", rest=True, limit=limits.QUESTION)
    question: Any = None  # domain.questions.Question, set by the edge's understander; None: not understood


@declare("help", "帮助", "查看全部命令", roles=EVERYONE, synonyms=("?", "菜单"))
@dataclass(frozen=True, kw_only=True)
class ShowHelp(ChatCommand):
    topic: str = arg("命令", "text", optional=True, rest=True, limit=limits.CHAT_WORD)


@declare("scan", "扫码", "扫描订单条码或快递单", roles=FLOOR, own_store=True, typed=False)
@dataclass(frozen=True, kw_only=True)
class ActOnScan(ChatCommand):
    order_no: str = arg("单号", "order")


@declare("answer", "回复", "直接回复（看不懂的消息、欢迎语）", roles=EVERYONE, typed=False)
@dataclass(frozen=True, kw_only=True)
class Answer(ChatCommand):
    """A message that is no command (a parse error, entering the chat) still gets its answer."""

    text: str = ""
