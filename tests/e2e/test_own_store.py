"""The own-store rule for every command that declares it, through signed WeCom callbacks on SQLite and PostgreSQL:
a warehouse user of another store is refused in one sentence and nothing changes (the order, the exception,
the stock, nothing queued for anyone else); the same command from the store's own clerk then works, so the
refusal is the store's and not the state's. A command declared own_store without a case here fails the suite."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from bot.keys import DB
from domain.chat_commands import COMMANDS
from domain.clock import utcnow
from domain.stores import Store
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork
from tests.e2e.conftest import Chat

NEW_ADDRESS = "上海市浦东新区世纪大道100号"
OTHER = "wh2"  # warehouse, store BJ01
OWN = "wh1"  # warehouse, store SH01


@pytest.fixture
async def staff(chat: Chat) -> Chat:
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    await chat.add_user("wh2", "赵磊", "warehouse", store="BJ01")
    await chat.add_user("cs1", "刘洋", "service")
    await chat.add_user("sup1", "李敏", "supervisor")
    return chat


async def say(chat: Chat, user: str, text: str) -> str:
    await chat.say(user, text)
    await chat.settle()
    return chat.last(user)


async def steps(chat: Chat, no: str, *texts: str) -> None:
    for text in texts:
        reply = await say(chat, OWN, text.format(no=no))
        assert "属于门店" not in reply and "不能" not in reply, reply


async def at_state(chat: Chat, state: str) -> str:
    """An order of store SH01 in `state`, moved there by its own clerk."""
    no = await chat.order()
    moves = {"split": (), "picking": ("拣货 {no}",), "quality_check": ("拣货 {no}", "质检 {no}"),
             "packed": ("拣货 {no}", "质检 {no}", "打包 {no} SF1234567890")}
    await steps(chat, no, *moves[state])
    return no


async def relabel_pending(chat: Chat) -> str:
    no = await at_state(chat, "packed")
    assert "换贴新面单" in await say(chat, "cs1", f"改地址 {no} {NEW_ADDRESS}")
    return no


async def packed_in_register(chat: Chat) -> str:
    """A packed order of a registered store: its label can be printed (again)."""
    async with UnitOfWork(chat.app[DB]) as uow:
        await uow.stores.save(Store("SH01", "浦东店", "上海市浦东新区川沙路100号"), utcnow())
        await uow.commit()
    return await at_state(chat, "packed")


async def out_of_stock_exception(chat: Chat) -> str:
    await chat.order(qty=5, on_hand=1)  # SH01 cannot fill it: an out-of-stock exception of store SH01
    async with chat.app[DB].engine.connect() as conn:
        [exc_id] = (await conn.execute(select(t.exceptions.c.id))).scalars().all()
    return str(exc_id)


@dataclass(frozen=True)
class Case:
    name: str  # the command's canonical name in domain/chat_commands.py
    prepare: Callable[[Chat], Awaitable[str]]  # returns the order number or exception id the command names
    text: str  # what is typed; "scan" scans the subject instead
    refusal: str  # part of the one-sentence refusal to the other store's clerk
    done: str  # part of the own clerk's answer


CASES = (
    Case("pick", lambda chat: at_state(chat, "split"), "拣货 {x}", "属于门店 SH01，您只能操作本门店（BJ01）", "已开始拣货"),
    Case("check", lambda chat: at_state(chat, "picking"), "质检 {x}", "属于门店 SH01，您只能操作本门店（BJ01）", "已送质检"),
    Case("pack", lambda chat: at_state(chat, "quality_check"), "打包 {x} SF1234567890",
         "属于门店 SH01，您只能操作本门店（BJ01）", "已打包"),
    Case("ship", lambda chat: at_state(chat, "packed"), "发货 {x}", "属于门店 SH01，您只能操作本门店（BJ01）", "已发货"),
    Case("relabel", relabel_pending, "确认改签 {x} YT0001", "属于门店 SH01，您只能操作本门店（BJ01）", "已确认改签"),
    Case("reprint", packed_in_register, "重打 {x}", "属于门店 SH01，您只能操作本门店（BJ01）", "已重打订单"),
    Case("scan", lambda chat: at_state(chat, "packed"), "scan", "属于门店 SH01，您只能操作本门店（BJ01）", "待出库"),
    Case("ack", out_of_stock_exception, "确认 {x}", "属于门店 SH01，仓管只能处理本门店（BJ01）", "已认领异常"),
    Case("resolve", out_of_stock_exception, "解决 {x} 已补货", "属于门店 SH01，仓管只能处理本门店（BJ01）", "已解决异常"),
)


def test_every_command_declared_own_store_has_a_case_here() -> None:
    declared = {spec.name for spec in COMMANDS if spec.own_store}
    assert declared == {case.name for case in CASES}


async def world(chat: Chat) -> dict[str, Any]:
    """Everything a refused command must leave as it was: orders, exceptions, stock, what is queued for others."""
    await chat.settle()
    found: dict[str, list[dict[str, Any]]] = {}
    async with chat.app[DB].engine.connect() as conn:
        for table, where in ((t.orders, ()), (t.exceptions, ()), (t.inventory, ()),
                             (t.outbox, (t.outbox.c.recipient != OTHER,))):
            stmt = select(table).where(*where).order_by(*table.primary_key.columns)
            found[table.name] = [dict(r._mapping) for r in await conn.execute(stmt)]
    return found


async def send(chat: Chat, user: str, case: Case, subject: str) -> str:
    if case.text == "scan":
        await chat.scan(user, subject)
        await chat.settle()
        return chat.last(user)
    return await say(chat, user, case.text.format(x=subject))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_a_warehouse_user_of_another_store_is_refused_and_nothing_changes(staff: Chat, case: Case) -> None:
    subject = await case.prepare(staff)
    before = await world(staff)
    cards_before = len([m for m in staff.fake.messages if m.get("touser") == OTHER])

    refusal = await send(staff, OTHER, case, subject)

    assert case.refusal in refusal
    assert await world(staff) == before
    to_other = [m for m in staff.fake.messages if m.get("touser") == OTHER][cards_before:]
    assert [m["msgtype"] for m in to_other] == ["text"]  # the refusal, no order card
    async with staff.app[DB].engine.connect() as conn:
        refused = (await conn.execute(select(t.audit_log.c.outcome).where(t.audit_log.c.actor == OTHER))).all()
    assert [r.outcome for r in refused] == ["refused"]

    seen = len(staff.received(OWN))
    await send(staff, OWN, case, subject)  # the store's own clerk may (a reprint may also bring the no-printer card)
    assert any(case.done in m for m in staff.received(OWN)[seen:]), staff.received(OWN)[seen:]
