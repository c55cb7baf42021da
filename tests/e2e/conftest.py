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
from bot.keys import DB
from config.settings import ApiSettings, Settings, WecomSettings
from domain.clock import utcnow
from domain.users import User
from integrations.db.uow import UnitOfWork
from integrations.fakes.wecom import FakeWeCom
from integrations.fakes.wecom_signer import card_click_xml, scan_xml, sign_callback, text_xml
from tests.e2e.harness import AppHarness

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
class Chat(AppHarness):
    client: TestClient
    fake: FakeWeCom
    settings: Settings
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))

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
