"""The whole app over HTTP from the DingTalk side: signed robot callbacks in, a fake DingTalk out.

`Ding` mirrors the WeCom `Chat` of tests/e2e/conftest.py (say, click, settle, received, last, add_user,
handle, order), so a command test can run on either platform. A person's DingTalk staff id is derived from
their userid (`staff_id`), never equal to it, so a lookup by the wrong id fails loudly.

The fixtures are named "fake_dingtalk", "ding", "ding_alone" and "cards" (interactive cards configured); a test module (or tests/e2e/conftest.py)
makes them available with `from tests.e2e.dingtalk_harness import ding_fixture, ...  # noqa: F401`.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from bot.app import create_app
from bot.keys import DB
from config.settings import DingtalkSettings, Settings
from domain.clock import utcnow
from domain.users import User
from integrations.db.uow import UnitOfWork
from integrations.delivery.limiter import command_text
from integrations.fakes.dingtalk import FakeDingTalk, visible_text
from tests.e2e.harness import AppHarness

APP_KEY = "dinge2eappkey"
APP_SECRET = "e2e-dingtalk-secret-0123456789abcdef"
TEMPLATE_ID = "e2e-approval-card.schema"
ROUTE_KEY = "orderbot_e2e_cards"
CARD_SECRET = "e2e-card-api-secret"


def staff_id(userid: str) -> str:
    return f"staff-{userid}"


@dataclass
class Ding(AppHarness):
    client: TestClient
    fake: FakeDingTalk
    settings: Settings
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))

    async def post(self, headers: dict[str, str], body: Any) -> int:
        response = await self.client.post("/dingtalk/callback", headers=headers, json=body)
        return response.status

    async def say(self, user: str, text: str, *, msg_id: str | None = None, group: bool = False,
                  session_ttl_s: float = 5400) -> int:
        """`user` writes `text` to the robot: in a single chat, or @-mentioning it in a group."""
        msg_id = msg_id or f"msg{next(self._ids)}"
        conversation = "cid-store-group" if group else f"cid-{user}"
        text = f"@订单助手 {text}" if group else text
        headers, body = self.fake.robot_message(staff_id(user), text, msg_id, conversation, "2" if group else "1",
                                                session_ttl_s=session_ttl_s)
        return await self.post(headers, body)

    async def click(self, user: str, key: str, task_id: str = "", response_code: str = "") -> int:
        """Tapping a card button: DingTalk sends the button's command as the person's message."""
        return await self.say(user, command_text(key))

    def received(self, user: str) -> list[str]:
        return [visible_text(m) for m in self.fake.messages_to(staff_id(user))]

    def last(self, user: str) -> str:
        got = self.received(user)
        assert got, f"{user} received nothing on DingTalk; fake got {self.fake.received}"
        return got[-1]

    async def add_user(self, userid: str, name: str, *roles: str, store: str | None = None) -> None:
        async with UnitOfWork(self.app[DB]) as uow:
            await uow.users.upsert(User(userid, name, frozenset(roles), store, staff_id(userid)), utcnow())
            await uow.commit()



def with_dingtalk(settings: Settings, fake: FakeDingTalk) -> Settings:
    return settings.model_copy(update={
        "dingtalk": DingtalkSettings(app_key=fake.app_key, app_secret=fake.app_secret, api_base=fake.base_url,
                                     session_webhook_hosts=["127.0.0.1"]),  # the fake's session webhooks
    })


@pytest.fixture(name="fake_dingtalk")
async def fake_dingtalk_fixture() -> AsyncIterator[FakeDingTalk]:
    async with FakeDingTalk(app_key=APP_KEY, app_secret=APP_SECRET) as fake:
        yield fake


@pytest.fixture(name="ding")
async def ding_fixture(aiohttp_client: Any, e2e_settings: Settings, fake_dingtalk: FakeDingTalk) -> Ding:
    """DingTalk and WeCom both configured (e2e_settings and fake_wecom come from tests/e2e/conftest.py)."""
    settings = with_dingtalk(e2e_settings, fake_dingtalk)
    client = await aiohttp_client(create_app(settings, deliver=False))
    return Ding(client, fake_dingtalk, settings)


@pytest.fixture(name="ding_alone")
async def ding_alone_fixture(aiohttp_client: Any, db_url: str, fake_dingtalk: FakeDingTalk) -> Ding:
    """DingTalk configured, WeCom not."""
    settings = with_dingtalk(Settings(database_url=db_url), fake_dingtalk)
    client = await aiohttp_client(create_app(settings, deliver=False))
    return Ding(client, fake_dingtalk, settings)


@pytest.fixture(name="cards")
async def cards_fixture(aiohttp_client: Any, e2e_settings: Settings, fake_dingtalk: FakeDingTalk) -> Ding:
    """DingTalk with interactive cards configured (and WeCom)."""
    fake_dingtalk.card_api_secret = CARD_SECRET
    settings = with_dingtalk(e2e_settings, fake_dingtalk)
    dingtalk = settings.dingtalk.model_copy(update={
        "card_template_id": TEMPLATE_ID, "card_callback_route_key": ROUTE_KEY, "card_callback_secret": SecretStr(CARD_SECRET),
    })
    settings = settings.model_copy(update={"dingtalk": dingtalk})
    client = await aiohttp_client(create_app(settings, deliver=False))
    return Ding(client, fake_dingtalk, settings)
