"""People who may talk to the bot, by WeCom userid or DingTalk staffId."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.users import User
from integrations.db import tables as t
from integrations.db.engine import HotStatement


class UserRepository:
    # every chat message looks its sender up: built once, run straight on asyncpg
    _get = HotStatement(select(t.users).where(t.users.c.userid == bindparam("b_id")))
    _by_dingtalk_id = HotStatement(select(t.users).where(t.users.c.dingtalk_id == bindparam("b_id")))

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, userid: str) -> User | None:
        m = await self._get.fetchrow(self.conn, {"b_id": userid})
        return _user_of(m) if m is not None else None

    async def by_platform_id(self, platform: str, platform_id: str) -> User | None:
        """The user behind a platform's sender id: a DingTalk staffId, else our (WeCom) userid."""
        if platform == "dingtalk":
            return await self.by_dingtalk_id(platform_id)
        return await self.get(platform_id)

    async def by_dingtalk_id(self, staff_id: str) -> User | None:
        m = await self._by_dingtalk_id.fetchrow(self.conn, {"b_id": staff_id})
        return _user_of(m) if m is not None else None

    async def list(self, *, role: str | None = None, store: str | None = None) -> list[User]:
        stmt = select(t.users).where(t.users.c.active.is_(True)).order_by(t.users.c.userid)
        if store:
            stmt = stmt.where(t.users.c.store == store)
        users = [_user(r) for r in await self.conn.execute(stmt)]
        return [u for u in users if role is None or role in u.roles]

    async def set_active(self, userid: str, active: bool) -> None:
        await self.conn.execute(update(t.users).where(t.users.c.userid == userid).values(active=active))

    async def upsert(self, user: User, at: datetime) -> bool:
        """Returns True when the user is new."""
        values = {
            "name": user.name, "roles": sorted(user.roles), "store": user.store,
            "dingtalk_id": user.dingtalk_id, "active": True,
        }
        result = await self.conn.execute(update(t.users).where(t.users.c.userid == user.userid).values(**values))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return False
        await self.conn.execute(insert(t.users).values(userid=user.userid, created_at=at, **values))
        return True


def _user(row: Any) -> User:
    return _user_of(row._mapping)


def _user_of(m: Any) -> User:
    """From anything read by column name (a RowMapping, an asyncpg Record)."""
    return User(m["userid"], m["name"], frozenset(m["roles"]), m["store"], m["dingtalk_id"], bool(m["active"]))
