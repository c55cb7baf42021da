"""Who may see what in answers to plain questions, and the list lines the answers share.

Used by handlers/chat_ask.py (orders, stock, one order) and handlers/ask_cases.py (exceptions, after-sales).
"""

from __future__ import annotations

from domain.chat_commands import DESK
from domain.errors import Forbidden
from domain.questions import AMOUNT_ROLES, Place
from domain.users import ROLES, User

LINES = 5  # list lines in one answer; the rest is "还有N条"


# ---- who may see what

def allow(user: User, roles: frozenset[str], what: str) -> None:
    if not user.has(*roles):
        allowed = "、".join(ROLES[r] for r in sorted(roles))
        raise Forbidden(f"{what}只有{allowed}可以查看。")


def floor_only(user: User) -> bool:
    """Warehouse staff without a desk role: their own store only."""
    return user.has("warehouse") and not user.has(*DESK)


def scope(user: User, stores: tuple[Place, ...], mine: bool, what: str) -> tuple[Place, ...]:
    if floor_only(user):
        if not user.store:
            raise Forbidden("您还没有绑定门店，请联系运营经理。")
        if any(p.code != user.store for p in stores):
            raise Forbidden(f"您只能查看本门店（{user.store}）的{what}。")
        return stores or (Place(user.store, user.store),)
    if mine and not stores:
        if not user.store:
            raise Forbidden("您没有绑定门店，请说门店名称，如：浦东店今天几单。")
        return (Place(user.store, user.store),)
    return stores


def amount_allowed(user: User, asked: bool) -> bool:
    if asked and not user.has(*AMOUNT_ROLES):
        raise Forbidden("金额只有财务、主管和运营经理可以查看。")
    return asked


# ---- the answers' lines

def more(lines: list[str], total: int) -> list[str]:
    return lines + [f"还有{total - len(lines)}条"] if total > len(lines) else lines


def label(places: tuple[Place, ...]) -> str:
    return "、".join(p.label for p in places)


def duration(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440}天"
    if minutes % 60 == 0:
        return f"{minutes // 60}小时"
    return f"{minutes}分钟"
