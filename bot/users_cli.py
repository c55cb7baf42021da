"""`orderbot users add USERID --name NAME --role ROLE [--store CODE] [--dingtalk-id ID]` and `orderbot users list`."""

from __future__ import annotations

import asyncio

from bot.cli_database import open_database
from config.settings import Settings
from domain.clock import utcnow
from domain.facts import AccountSaved
from domain.users import ROLES, User, validate_roles
from handlers.publish import store_events
from integrations.db.uow import UnitOfWork


def add_user(settings: Settings, userid: str, name: str, role: list[str], store: str | None,
             dingtalk_id: str | None) -> int:
    roles = validate_roles(role)
    if "warehouse" in roles and not store:
        raise ValueError("仓管（warehouse）必须指定门店：--store 门店编码")
    user = User(userid, name, roles, store, dingtalk_id or userid)
    created = asyncio.run(_save(settings, user))
    role_names = "、".join(ROLES[r] for r in sorted(roles))
    print(f"{'已添加' if created else '已更新'}用户 {user.userid}（{user.name}，{role_names}）")
    return 0


async def _save(settings: Settings, user: User) -> bool:
    async with open_database(settings) as db, UnitOfWork(db) as uow:
        now = utcnow()
        holder = await uow.users.by_dingtalk_id(user.dingtalk_id) if user.dingtalk_id else None
        if holder is not None and holder.userid != user.userid:
            raise ValueError(
                f"钉钉 ID {user.dingtalk_id} 已属于用户 {holder.userid}（{holder.name}），请用 --dingtalk-id 指定另一个。"
            )
        created = await uow.users.upsert(user, now)
        uow.acting("cli", "cli")
        saved = AccountSaved(user.userid, created, tuple(sorted(user.roles)), user.store)
        await uow.record([saved.change()], now)
        await store_events([saved], uow, now)  # on the order event bus too, like every fact
        await uow.commit()
        return created


def list_users(settings: Settings) -> int:
    users = asyncio.run(_list(settings))
    if not users:
        print("还没有用户。添加：orderbot users add USERID --name 姓名 --role 角色")
    for u in users:
        roles = ",".join(sorted(u.roles))
        print(f"{u.userid}\t{u.name}\t{roles}\t{u.store or '-'}\t{u.dingtalk_id or '-'}")
    return 0


async def _list(settings: Settings) -> list[User]:
    async with open_database(settings) as db, UnitOfWork(db) as uow:
        return await uow.users.list()
