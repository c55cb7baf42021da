"""The whole app over HTTP: signed WeCom callbacks in, a fake WeCom server out, a real database."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.keys import BUS, CONVERSATIONS, DB, DISPATCHER
from config.settings import ApiSettings, Settings, WecomSettings
from domain import commands as c
from domain.clock import utcnow
from domain.users import User
from integrations.db.uow import UnitOfWork
from integrations.fakes.wecom import FakeWeCom
from integrations.fakes.wecom_signer import card_click_xml, scan_xml, sign_callback, text_xml

TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP_ID = "ww1436e0e65a779aee"
SECRET = "e2e-secret"
API_TOKEN = "e2e-api-token"


def message_text(payload: dict[str, Any]) -> str:
    """What a person sees of one message the fake WeCom accepted."""
    kind = payload["msgtype"]
    if kind in ("text", "markdown"):
        return str(payload[kind]["content"])
    card = payload["template_card"]
    parts = [card.get("main_title", {}).get("title", ""), card.get("main_title", {}).get("desc", ""),
             card.get("sub_title_text", "")]
    parts += [f"{x.get('keyname')}：{x.get('value')}" for x in card.get("horizontal_content_list", [])]
    parts += [f"[{b['text']}]" for b in card.get("button_list", [])]
    return " ".join(p for p in parts if p)


@dataclass
class Chat:
    client: TestClient
    fake: FakeWeCom
    settings: Settings
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))

    @property
    def app(self) -> Any:
        return self.client.server.app

    async def post_xml(self, xml: str, *, timestamp: int | None = None) -> int:
        query, body = sign_callback(TOKEN, AES_KEY, CORP_ID, xml, timestamp or int(time.time()), "n0nce")
        response = await self.client.post("/wecom/callback", params=query, data=body)
        return response.status

    async def say(self, user: str, text: str, *, msg_id: str | None = None) -> int:
        msg_id = msg_id or str(next(self._ids))
        return await self.post_xml(text_xml(user, text, msg_id, int(time.time()), corp_id=CORP_ID))

    async def click(self, user: str, key: str, task_id: str, response_code: str) -> int:
        xml = card_click_xml(user, key, task_id, response_code, int(time.time()) + next(self._ids), corp_id=CORP_ID)
        return await self.post_xml(xml)

    async def scan(self, user: str, code: str) -> int:
        return await self.post_xml(scan_xml(user, f"CODE_128,{code}", int(time.time()) + next(self._ids),
                                            corp_id=CORP_ID))

    async def settle(self) -> None:
        """Let background processing finish and deliver everything due."""
        await self.app[CONVERSATIONS].drain()
        while await self.app[DISPATCHER].run_once():
            pass

    def received(self, user: str) -> list[str]:
        return [message_text(m) for m in self.fake.messages if m.get("touser") == user]

    def last(self, user: str) -> str:
        got = self.received(user)
        assert got, f"{user} received nothing; fake got {self.fake.messages}"
        return got[-1]

    async def add_user(self, userid: str, name: str, *roles: str, store: str | None = None) -> None:
        async with UnitOfWork(self.app[DB]) as uow:
            await uow.users.upsert(User(userid, name, frozenset(roles), store, userid), utcnow())
            await uow.commit()

    async def handle(self, command: Any) -> Any:
        return await self.app[BUS].handle(command)

    async def order(self, external_id: str = "DY1001", *, store: str = "SH01", qty: int = 2,
                    amount_fen: int = 19_900, on_hand: int = 10) -> str:
        await self.handle(c.SetStock(store, "BP-001", on_hand, by="api", via="api"))
        order, _ = await self.handle(c.CreateOrder(
            channel="douyin", external_id=external_id, customer_id="C-4S-01", customer_name="浦东4S店",
            customer_phone="13800000000", address="上海市浦东新区张杨路500号", store=store, paid=True,
            lines=(c.LineInput("BP-001", qty, amount_fen, "刹车片"),), by="api", via="api",
        ))
        return str(order.order_no)


@pytest.fixture
async def fake_wecom() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom(corp_id=CORP_ID, secret=SECRET) as fake:
        yield fake


@pytest.fixture
def e2e_settings(db_url: str, fake_wecom: FakeWeCom) -> Settings:
    return Settings(
        database_url=db_url,
        api=ApiSettings(token=API_TOKEN),
        wecom=WecomSettings(corp_id=CORP_ID, agent_id=fake_wecom.agent_id, secret=SECRET, token=TOKEN,
                            aes_key=AES_KEY, api_base=fake_wecom.base_url),
    )


@pytest.fixture
async def chat(aiohttp_client: Any, e2e_settings: Settings, fake_wecom: FakeWeCom) -> Chat:
    client = await aiohttp_client(create_app(e2e_settings, deliver=False))
    return Chat(client, fake_wecom, e2e_settings)


from tests.e2e.dingtalk_harness import (  # noqa: E402,F401  (fixtures for every e2e module)
    ding_alone_fixture,
    ding_fixture,
    fake_dingtalk_fixture,
)
