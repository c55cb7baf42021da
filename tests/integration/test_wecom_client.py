from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from domain.chat import Button, Card, Reply
from integrations.fakes.wecom import RESPONSE_CODE_USED, UPDATE_CARD_PATH, WEBHOOK_PATH, FakeWeCom
from integrations.tokens import MemoryTokenCache
from integrations.wecom.client import WeComClient, WeComRejected, WeComRetryable
from integrations.wecom.render import render_card_update, render_message
from tests.integration.helpers import CLIENT_TIMEOUT_S, Clock

CORP_ID = "ww-test-corp"
SECRET = "test-secret"
AGENT_ID = 1000002


@pytest.fixture
def fake_clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(fake_clock: Clock) -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, clock=fake_clock) as server:
        yield server


def make_client(
    http: httpx.AsyncClient,
    api_base: str,
    *,
    cache: MemoryTokenCache | None = None,
    clock: Clock | None = None,
    secret: str = SECRET,
) -> WeComClient:
    return WeComClient(
        http,
        api_base=api_base,
        corp_id=CORP_ID,
        secret=secret,
        agent_id=AGENT_ID,
        token_cache=cache or MemoryTokenCache(),
        clock=clock or Clock(),
    )


@pytest.fixture
def client(http: httpx.AsyncClient, fake: FakeWeCom, fake_clock: Clock) -> WeComClient:
    return make_client(http, fake.base_url, clock=fake_clock)


def text(touser: str, content: str) -> dict[str, Any]:
    return render_message(touser, AGENT_ID, Reply(content))


def contents(fake: FakeWeCom) -> list[str]:
    return [message["text"]["content"] for message in fake.messages]


# -- access token ---------------------------------------------------------------------------------


async def test_one_token_serves_many_sends(client: WeComClient, fake: FakeWeCom) -> None:
    for n in range(5):
        await client.send(text("lisi", f"订单 SO{n} 已发货"))
    assert fake.token_requests == 1
    assert contents(fake) == [f"订单 SO{n} 已发货" for n in range(5)]


async def test_token_is_refreshed_within_five_minutes_of_expiry(
    client: WeComClient, fake: FakeWeCom, fake_clock: Clock
) -> None:
    await client.send(text("lisi", "one"))
    fake_clock.now += 7200 - 301
    await client.send(text("lisi", "two"))
    assert fake.token_requests == 1
    fake_clock.now += 2
    await client.send(text("lisi", "three"))
    assert fake.token_requests == 2
    assert contents(fake) == ["one", "two", "three"]


async def test_concurrent_sends_share_one_token_fetch(client: WeComClient, fake: FakeWeCom) -> None:
    await asyncio.gather(*(client.send(text("lisi", f"c{n}")) for n in range(5)))
    assert fake.token_requests == 1
    assert sorted(contents(fake)) == [f"c{n}" for n in range(5)]


async def test_replicas_sharing_a_token_cache_reuse_its_token(
    http: httpx.AsyncClient, fake: FakeWeCom
) -> None:
    cache = MemoryTokenCache()
    for n in range(3):
        await make_client(http, fake.base_url, cache=cache).send(text("lisi", f"r{n}"))
    assert fake.token_requests == 1
    assert contents(fake) == ["r0", "r1", "r2"]


@pytest.mark.parametrize("how", ["expire_tokens", "errcode_42001", "errcode_40014"])
async def test_refused_token_is_refetched_once_and_the_message_recorded_once(
    client: WeComClient, fake: FakeWeCom, how: str
) -> None:
    await client.send(text("lisi", "warm-up"))
    if how == "expire_tokens":
        fake.expire_tokens()
    else:
        fake.fail_next(errcode=int(how.removeprefix("errcode_")))
    answer = await client.send(text("lisi", "after refresh"))
    assert answer["errcode"] == 0
    assert fake.token_requests == 2
    assert contents(fake) == ["warm-up", "after refresh"]


async def test_wrong_secret_is_a_permanent_refusal(http: httpx.AsyncClient, fake: FakeWeCom) -> None:
    client = make_client(http, fake.base_url, secret="not-the-secret")
    with pytest.raises(WeComRejected) as refused:
        await client.send(text("lisi", "hi"))
    assert refused.value.errcode == 40001
    assert fake.messages == []


# -- failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "status"),
    [(-1, None), (45009, None), (45033, None), (None, 500), (None, 502)],
    ids=["busy", "freq-limit", "concurrency-limit", "http-500", "http-502"],
)
async def test_transient_failures_are_retryable_and_nothing_is_recorded(
    client: WeComClient, fake: FakeWeCom, errcode: int | None, status: int | None
) -> None:
    fake.fail_next(errcode=errcode, status=status)
    with pytest.raises(WeComRetryable) as transient:
        await client.send(text("lisi", "hi"))
    assert transient.value.errcode == errcode
    assert fake.messages == []


async def test_a_stall_beyond_the_client_timeout_is_retryable_and_nothing_is_recorded(
    client: WeComClient, fake: FakeWeCom
) -> None:
    await client.send(text("lisi", "warm-up"))  # token fetched, so the stall hits message/send itself
    fake.stall_next(CLIENT_TIMEOUT_S * 3)
    with pytest.raises(WeComRetryable):
        await client.send(text("lisi", "stalled"))
    await asyncio.sleep(CLIENT_TIMEOUT_S * 3)  # long enough for the stalled request to have finished
    assert contents(fake) == ["warm-up"]


async def test_an_unreachable_wecom_is_retryable(http: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client = make_client(http, f"http://127.0.0.1:{closed_port}")
    with pytest.raises(WeComRetryable):
        await client.send(text("lisi", "hi"))


async def test_a_permanent_errcode_is_rejected(client: WeComClient, fake: FakeWeCom) -> None:
    fake.fail_next(errcode=40003)  # invalid userid
    with pytest.raises(WeComRejected) as refused:
        await client.send(text("nobody", "hi"))
    assert refused.value.errcode == 40003
    assert fake.messages == []


async def test_a_wrong_agent_id_is_rejected(client: WeComClient, fake: FakeWeCom) -> None:
    with pytest.raises(WeComRejected) as refused:
        await client.send(render_message("lisi", 999, Reply("hi")))
    assert refused.value.errcode == 40056
    assert fake.messages == []


async def test_scripted_trouble_then_success_delivers_exactly_once(
    client: WeComClient, fake: FakeWeCom
) -> None:
    await client.send(text("lisi", "warm-up"))
    fake.fail_next(errcode=42001)
    fake.fail_next(errcode=-1, times=3)
    fake.fail_next(status=500)
    outcomes: list[str] = []
    for _ in range(10):
        try:
            await client.send(text("lisi", "SO20240001 已发货"))
        except WeComRetryable as exc:
            outcomes.append(f"retry {exc.errcode}")
            continue
        outcomes.append("sent")
        break
    assert outcomes == ["retry -1", "retry -1", "retry -1", "retry None", "sent"]
    assert contents(fake) == ["warm-up", "SO20240001 已发货"]
    assert fake.token_requests == 2


# -- duplicate check ---------------------------------------------------------------------------------


async def test_duplicate_check_records_an_identical_message_once(
    client: WeComClient, fake: FakeWeCom
) -> None:
    payload = text("lisi", "SO20240001 已发货")
    first = await client.send(payload)
    second = await client.send(payload)
    await client.send(text("wanggang", "SO20240001 已发货"))
    assert first["msgid"] == second["msgid"]
    assert [(m["touser"], m["text"]["content"]) for m in fake.messages] == [
        ("lisi", "SO20240001 已发货"),
        ("wanggang", "SO20240001 已发货"),
    ]


async def test_duplicate_check_lapses_after_its_interval(
    client: WeComClient, fake: FakeWeCom, fake_clock: Clock
) -> None:
    payload = text("lisi", "今日概况")
    await client.send(payload)
    fake_clock.now += 1801
    await client.send(payload)
    assert contents(fake) == ["今日概况", "今日概况"]


async def test_without_duplicate_check_both_copies_are_recorded(client: WeComClient, fake: FakeWeCom) -> None:
    payload = {"touser": "lisi", "agentid": AGENT_ID, "msgtype": "text", "text": {"content": "hi"}}
    await client.send(payload)
    await client.send(payload)
    assert contents(fake) == ["hi", "hi"]


# -- template cards -----------------------------------------------------------------------------------


REFUND_CARD = Card(
    title="退款审批 AS000012",
    description="¥680.00 发错货",
    task_id="refund-AS000012",
    buttons=(Button("approve AS000012", "同意"), Button("reject AS000012", "拒绝", style=2)),
)


async def test_a_card_response_code_updates_the_card_once(client: WeComClient, fake: FakeWeCom) -> None:
    answer = await client.send(render_message("zhangmin", AGENT_ID, REFUND_CARD))
    update = render_card_update(["zhangmin"], AGENT_ID, answer["response_code"], "已同意 · 李敏 10:42")
    assert (await client.update_template_card(update))["errcode"] == 0
    with pytest.raises(WeComRejected) as refused:
        await client.update_template_card(update)
    assert refused.value.errcode == RESPONSE_CODE_USED
    assert [u["button"]["replace_name"] for u in fake.card_updates] == ["已同意 · 李敏 10:42"]


async def test_a_click_response_code_can_also_update_the_card(client: WeComClient, fake: FakeWeCom) -> None:
    await client.send(render_message("zhangmin", AGENT_ID, REFUND_CARD))
    click_code = fake.issue_response_code()
    await client.update_template_card(render_card_update(["zhangmin"], AGENT_ID, click_code, "已拒绝"))
    assert [u["response_code"] for u in fake.card_updates] == [click_code]


async def test_card_update_failures_can_be_injected(client: WeComClient, fake: FakeWeCom) -> None:
    answer = await client.send(render_message("zhangmin", AGENT_ID, REFUND_CARD))
    update = render_card_update(["zhangmin"], AGENT_ID, answer["response_code"], "已同意")
    fake.fail_next(status=503, path=UPDATE_CARD_PATH)
    with pytest.raises(WeComRetryable):
        await client.update_template_card(update)
    await client.update_template_card(update)  # the code was not consumed by the failed call
    assert len(fake.card_updates) == 1


# -- group robot webhook ---------------------------------------------------------------------------------


def robot_text(n: int) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": f"门店 S07 异常 {n}"}}


async def test_webhook_allows_twenty_messages_a_minute_per_key(
    client: WeComClient, fake: FakeWeCom, fake_clock: Clock
) -> None:
    for n in range(20):
        await client.webhook_send("robot-s07", robot_text(n))
    with pytest.raises(WeComRetryable) as throttled:
        await client.webhook_send("robot-s07", robot_text(20))
    assert throttled.value.errcode == 45009
    await client.webhook_send("robot-s08", robot_text(0))  # another robot has its own budget
    fake_clock.now += 60
    await client.webhook_send("robot-s07", robot_text(21))
    assert len(fake.webhook_messages) == 22
    assert fake.webhook_messages[-1]["text"]["content"] == "门店 S07 异常 21"
    assert fake.webhook_keys.count("robot-s07") == 21
    assert fake.token_requests == 0


async def test_webhook_failures_can_be_injected(client: WeComClient, fake: FakeWeCom) -> None:
    fake.fail_next(errcode=-1, path=WEBHOOK_PATH)
    with pytest.raises(WeComRetryable):
        await client.webhook_send("robot-s07", robot_text(0))
    assert fake.webhook_messages == []
