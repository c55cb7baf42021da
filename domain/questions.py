"""Plain questions people ask in chat, as typed values: what the understander (bot/understanding.py) makes of a
sentence, and what the answering handlers (handlers/chat_ask.py, handlers/ask_cases.py) read.

Times stay relative here ("today", "the last 2 hours"); `window` turns them into UTC bounds against the
clock of the moment the question is answered, in China time like every day people speak of.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from domain.clock import local

SpanKind = Literal["today", "yesterday", "days_ago", "this_week", "last_week", "this_month", "date", "hours",
                   "minutes", "days"]

# Who sees money: order and refund amounts are for finance, supervisors and managers; anyone else asking for an
# amount is refused, and their answers leave amounts out.
AMOUNT_ROLES = frozenset({"finance", "supervisor", "manager"})
# Who may ask about stock (the 库存 command too): the floor, purchasing and the desk.
STOCK_ROLES = frozenset({"warehouse", "purchasing", "supervisor", "manager"})
# Who may ask about exceptions and after-sales (warehouse staff: their store's exceptions only).
INCIDENT_ROLES = frozenset({"warehouse", "purchasing", "supervisor", "manager"})
AFTERSALE_ROLES = frozenset({"service", "finance", "supervisor", "manager"})
HEALTH_ROLES = frozenset({"supervisor", "manager", "finance"})


@dataclass(frozen=True)
class Span:
    """A stretch of time as people name it."""

    kind: SpanKind
    n: int = 0  # hours, minutes or days for "最近N…", days back for days_ago
    month: int = 0
    day: int = 0

    @property
    def label(self) -> str:
        return {
            "today": "今天", "yesterday": "昨天", "this_week": "本周", "last_week": "上周", "this_month": "本月",
            "days_ago": f"{self.n}天前", "date": f"{self.month}月{self.day}日", "hours": f"最近{self.n}小时",
            "minutes": f"最近{self.n}分钟", "days": f"最近{self.n}天",
        }[self.kind]


def window(span: Span, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) in UTC. A date without a year is the latest such date not after today."""
    today = local(now).replace(hour=0, minute=0, second=0, microsecond=0)
    if span.kind == "hours":
        return now - timedelta(hours=span.n), now
    if span.kind == "minutes":
        return now - timedelta(minutes=span.n), now
    if span.kind == "days":
        return now - timedelta(days=span.n), now
    if span.kind == "today":
        start, end = today, today + timedelta(days=1)
    elif span.kind in ("yesterday", "days_ago"):
        back = 1 if span.kind == "yesterday" else span.n
        start, end = today - timedelta(days=back), today - timedelta(days=back - 1)
    elif span.kind == "this_week":
        start = today - timedelta(days=today.weekday())
        end = start + timedelta(days=7)
    elif span.kind == "last_week":
        end = today - timedelta(days=today.weekday())
        start = end - timedelta(days=7)
    elif span.kind == "this_month":
        start = today.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        try:
            start = today.replace(month=span.month, day=span.day)
        except ValueError:  # 2月30日: nothing can fall in it
            return now, now
        if start > today:
            start = start.replace(year=start.year - 1)
        end = start + timedelta(days=1)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class Place:
    """A store named in the question: its code and the name people use."""

    code: str
    name: str

    @property
    def label(self) -> str:
        return self.name or self.code


@dataclass(frozen=True)
class OrderQuestion:
    """How many orders (or which), by store, state, channel, customer and time."""

    listing: bool = False
    stores: tuple[Place, ...] = ()
    mine: bool = False  # "我们店": the asker's store
    per_store: bool = False  # "各店": one figure per store
    states: tuple[str, ...] = ()
    state_label: str = ""  # 未发货, 已发货, 拣货中 ...
    channel: str = ""
    channel_label: str = ""
    customer: str = ""  # a customer id
    customer_label: str = ""
    span: Span | None = None
    time_field: Literal["created", "shipped", "updated"] = "created"
    address_changed: bool = False  # orders whose address was changed (in the span)
    amount: bool = False  # asked for the money
    older_than_minutes: int = 0  # unchanged for longer than this ("超过2小时没发")


@dataclass(frozen=True)
class StockQuestion:
    """What is left of a part, by SKU code or part name, in one store or each."""

    skus: tuple[str, ...] = ()
    part: str = ""  # the part as named, when named by name; the SKU code otherwise
    stores: tuple[Place, ...] = ()
    mine: bool = False
    query: str = ""  # what was typed, when it matched no SKU we know (the 库存 command looks it up itself)


@dataclass(frozen=True)
class IncidentQuestion:
    """Open exceptions (异常), by kind and age."""

    listing: bool = False
    kinds: tuple[str, ...] = ()
    kind_label: str = ""
    older_than_minutes: int = 0
    span: Span | None = None  # opened within
    stores: tuple[Place, ...] = ()
    mine: bool = False


@dataclass(frozen=True)
class AftersaleQuestion:
    """After-sales by state, kind, approver and time ("李敏这周批了几笔退款")."""

    listing: bool = False
    states: tuple[str, ...] = ()
    state_label: str = ""
    kinds: tuple[str, ...] = ()
    kind_label: str = ""
    approver: str = ""  # a userid
    approver_name: str = ""
    decision: Literal["", "approved", "rejected"] = ""
    span: Span | None = None
    amount: bool = False


@dataclass(frozen=True)
class WhereIsOrder:
    """One order's whereabouts, by our order number, a channel's order id or its waybill."""

    ref: str


@dataclass(frozen=True)
class AftersaleStatus:
    aftersale_no: str


@dataclass(frozen=True)
class HealthQuestion:
    """Today's health figures, as 概况 has them."""


@dataclass(frozen=True)
class Choice:
    label: str  # what the button says
    text: str  # the question it asks when tapped


@dataclass(frozen=True)
class Clarify:
    """Not sure: ask back with at most three choices."""

    prompt: str
    choices: tuple[Choice, ...] = field(default_factory=tuple)


Question = (
    OrderQuestion | StockQuestion | IncidentQuestion | AftersaleQuestion | WhereIsOrder | AftersaleStatus
    | HealthQuestion | Clarify
)
MAX_CHOICES = 3
CIRCLED = "①②③"


def choice_prompt(lead: str, choices: tuple[Choice, ...]) -> str:
    """"您是说：① 浦东店 ② 浦西店？"."""
    return lead + " ".join(f"{CIRCLED[i]} {c.label}" for i, c in enumerate(choices[:MAX_CHOICES])) + "？"
