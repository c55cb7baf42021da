"""用户 <账号> 停用|启用: a manager disables a staff account from chat (the command that shows how a new chat
command is added: one declaration in domain/chat_commands.py and one handler in handlers/chat_desk.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.keys import DB
from integrations.db import tables as t
from tests.e2e.conftest import Chat
from tests.e2e.test_chat_warehouse import say


@pytest.fixture
async def staff(chat: Chat) -> Chat:
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    await chat.add_user("sup1", "李敏", "supervisor")
    await chat.add_user("mgr1", "王芳", "manager")
    return chat


async def audit_of(chat: Chat, userid: str) -> list[tuple[str, str, str, str]]:
    async with chat.app[DB].engine.connect() as conn:
        found = await conn.execute(
            select(t.audit_log).where(t.audit_log.c.entity == "user", t.audit_log.c.entity_id == userid)
        )
        return [(r.actor, r.action, r.outcome, r.to_state or "") for r in found]


async def test_a_manager_disables_and_enables_an_account(staff: Chat) -> None:
    assert await say(staff, "wh1", "待办") == "暂无待办，有新任务会推送给您。"
    assert await say(staff, "mgr1", "用户 wh1 停用") == "已停用 王强（wh1）的账号，此后其消息将被拒绝，也不再收到推送。"
    assert await say(staff, "wh1", "待办") == "您的订单助手账号已停用。如需恢复，请联系运营经理。"
    assert await say(staff, "mgr1", "用户 wh1 停用") == "王强（wh1）的账号已是停用状态，无需重复操作。"
    assert await say(staff, "mgr1", "user wh1 enable") == "已启用 王强（wh1）的账号，可以继续使用订单助手。"
    assert (await say(staff, "wh1", "帮助")).startswith("可以发这些命令")
    assert await audit_of(staff, "wh1") == [
        ("mgr1", "disable", "ok", "disabled"), ("wh1", "tasks", "refused", ""), ("mgr1", "enable", "ok", "active")]
    # a refused tasks query is the only trace wh1 left while disabled


async def test_only_managers_may_and_bad_requests_change_nothing(staff: Chat) -> None:
    assert await say(staff, "sup1", "用户 wh1 停用") == "“用户”只有运营经理可以使用，您的角色是主管。"
    assert await say(staff, "mgr1", "用户 wh1 删除") == "请写“停用”或“启用”。用法：用户 <账号> <停用|启用>"
    assert await say(staff, "mgr1", "用户 nobody 停用") == (
        "找不到账号 nobody，请核对企业微信账号（可用 orderbot users list 查看）。")
    assert await say(staff, "mgr1", "用户 mgr1 停用") == "不能停用自己的账号，请让另一位运营经理操作。"
    assert await say(staff, "mgr1", "用户 wh1") == "缺少停用|启用。用法：用户 <账号> <停用|启用>"
    assert await say(staff, "wh1", "待办") == "暂无待办，有新任务会推送给您。"  # still active
    assert [a for a in await audit_of(staff, "wh1") if a[2] == "ok"] == []


async def test_a_disabled_account_gets_no_pushes(staff: Chat) -> None:
    await say(staff, "mgr1", "用户 wh1 停用")
    before = len([m for m in staff.fake.messages if m.get("touser") == "wh1"])
    await staff.order("DY2001")  # allocated to SH01: the pick task goes to its warehouse staff
    await staff.settle()
    assert len([m for m in staff.fake.messages if m.get("touser") == "wh1"]) == before
