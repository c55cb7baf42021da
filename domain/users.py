"""People who may talk to the bot, and what each role may do."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = {
    "manager": "运营经理",
    "supervisor": "主管",
    "warehouse": "仓管",
    "service": "客服",
    "purchasing": "采购",
    "finance": "财务",
}


@dataclass(frozen=True)
class User:
    userid: str
    name: str
    roles: frozenset[str]
    store: str | None = None
    dingtalk_id: str | None = None
    active: bool = True  # a manager can disable an account (用户 <账号> 停用); a disabled user is refused

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))


def validate_roles(roles: list[str]) -> frozenset[str]:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"未知角色：{'、'.join(unknown)}（可选：{'、'.join(ROLES)}）")
    if not roles:
        raise ValueError("至少需要一个角色。")
    return frozenset(roles)
