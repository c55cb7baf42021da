"""A sender that sends a callback's headers and never finishes the body holds nobody up: it is not counted as a
callback in flight, everyone else is answered at normal speed, and it gets 408 when its time is up."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.app import create_app
from bot.keys import INBOUND_QUEUE, PACER
from config.settings import HttpSettings, Settings
from integrations.fakes.wecom import FakeWeCom
from tests.e2e.conftest import Chat
from tests.e2e.edge_helpers import stored_rows

BODY_TIMEOUT_S = 5.0  # long enough that the whole suite's load on 2 cores still answers the help message well before it


@pytest.fixture
async def paced_chat(aiohttp_client: Any, e2e_settings: Settings, fake_wecom: FakeWeCom) -> Chat:
    settings = e2e_settings.model_copy(update={"http": HttpSettings(body_timeout_s=BODY_TIMEOUT_S)})
    client = await aiohttp_client(create_app(settings, deliver=False))
    return Chat(client, fake_wecom, settings)


async def _start_slow_callback(chat: Chat, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(chat.client.server.host, chat.client.server.port)
    query = f"msg_signature={'0' * 40}&timestamp={int(time.time())}&nonce=n" if path == "/wecom/callback" else ""
    writer.write(f"POST {path}?{query} HTTP/1.1\r\nHost: test\r\nContent-Type: text/xml\r\n"
                 f"Content-Length: 4000\r\n\r\n<xml><Encrypt>".encode())
    await writer.drain()
    return reader, writer


@pytest.mark.parametrize("path", ["/wecom/callback", "/dingtalk/callback", "/channels/kuaidi100/callback"])
async def test_an_unfinished_body_holds_nobody_up_and_times_out(paced_chat: Chat, path: str) -> None:
    chat, pacer = paced_chat, paced_chat.app[PACER]
    await chat.add_user("sup1", "李敏", "supervisor")
    reader, writer = await _start_slow_callback(chat, path)
    try:
        await asyncio.sleep(0.2)
        assert pacer.in_flight == 0  # an unread, unverified callback is not in flight
        started = time.monotonic()
        await asyncio.wait_for(pacer.yield_to_acks(), 0.1)  # background work is not held back
        assert await chat.say("sup1", "帮助") == 200
        await chat.settle()
        assert chat.received("sup1")  # the help text reached the supervisor
        assert time.monotonic() - started < BODY_TIMEOUT_S  # answered while the slow sender still hangs
        status_line = await asyncio.wait_for(reader.readline(), BODY_TIMEOUT_S * 3)
        assert int(status_line.split()[1]) == 408
    finally:
        writer.close()
    assert pacer.in_flight == 0


async def test_a_verified_callback_counts_while_it_is_stored(paced_chat: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other half: a verified callback does make background work step aside until it is answered."""
    chat, pacer = paced_chat, paced_chat.app[PACER]
    seen: list[int] = []
    queue = chat.app[INBOUND_QUEUE]
    real_accept = queue.accept

    async def spy_accept(message: Any) -> Any:
        seen.append(pacer.in_flight)
        return await real_accept(message)

    monkeypatch.setattr(queue, "accept", spy_accept)
    before = await stored_rows(chat.app)
    assert await chat.say("nobody", "帮助") == 200
    assert seen == [1] and pacer.in_flight == 0
    assert (await stored_rows(chat.app))["inbound_messages"] == before["inbound_messages"] + 1
