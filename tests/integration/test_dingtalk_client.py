"""The DingTalk client against the fake DingTalk: token lifecycle, batchSend, session webhooks, failures,
and the DingTalk chat sender's choice between them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from domain.chat import Reply, to_payload
from integrations.delivery.dingtalk_sender import SESSION_WEBHOOK, DingTalkChatSender
from integrations.delivery.dispatcher import OutboxRow, PermanentDelivery, RetryableDelivery
from integrations.dingtalk.client import (
    DingTalkClient,
    DingTalkRejected,
    DingTalkRetryable,
    SessionWebhook,
)
from integrations.dingtalk.render import render_batch, render_webhook
from integrations.fakes.dingtalk import BATCH_SEND_PATH, SESSION_PATH, TOKEN_PATH, FakeDingTalk
from integrations.tokens import MemoryTokenCache
from tests.integration.helpers import CLIENT_TIMEOUT_S, Clock

APP_KEY = "dingtestappkey"
APP_SECRET = "test-app-secret"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeDingTalk]:
    async with FakeDingTalk(app_key=APP_KEY, app_secret=APP_SECRET, clock=clock) as server:
        yield server


def make_client(http: httpx.AsyncClient, fake: FakeDingTalk, clock: Clock, *, cache: MemoryTokenCache | None = None,
                secret: str = APP_SECRET) -> DingTalkClient:
    return DingTalkClient(http, api_base=fake.base_url, app_key=APP_KEY, app_secret=secret,
                          token_cache=cache or MemoryTokenCache(), clock=clock)


@pytest.fixture
def client(http: httpx.AsyncClient, fake: FakeDingTalk, clock: Clock) -> DingTalkClient:
    return make_client(http, fake, clock)


async def send_text(client: DingTalkClient, staff_id: str, text: str) -> None:
    await client.batch_send([staff_id], *render_batch(Reply(text)))


def texts(fake: FakeDingTalk) -> list[str]:
    return [str(m.content.get("content")) for m in fake.received]


# -- access token ---------------------------------------------------------------------------------


async def test_one_token_serves_many_sends(client: DingTalkClient, fake: FakeDingTalk) -> None:
    for n in range(5):
        await send_text(client, "staff1", f"第{n}条")
    assert fake.token_requests == 1
    assert texts(fake) == [f"第{n}条" for n in range(5)]


async def test_the_token_is_shared_through_the_cache(http: httpx.AsyncClient, fake: FakeDingTalk, clock: Clock) -> None:
    cache = MemoryTokenCache()
    await send_text(make_client(http, fake, clock, cache=cache), "staff1", "一")
    await send_text(make_client(http, fake, clock, cache=cache), "staff1", "二")
    assert fake.token_requests == 1


async def test_the_token_is_refreshed_before_it_expires(client: DingTalkClient, fake: FakeDingTalk, clock: Clock) -> None:
    await send_text(client, "staff1", "一")
    clock.now += 7200 - 200  # inside the refresh margin
    await send_text(client, "staff1", "二")
    assert fake.token_requests == 2


async def test_a_refused_token_is_refetched_once(client: DingTalkClient, fake: FakeDingTalk) -> None:
    await send_text(client, "staff1", "一")
    fake.expire_tokens()  # DingTalk answers 400 InvalidAuthentication
    await send_text(client, "staff1", "二")
    assert fake.token_requests == 2 and texts(fake) == ["一", "二"]


async def test_http_401_refetches_the_token_once(client: DingTalkClient, fake: FakeDingTalk) -> None:
    await send_text(client, "staff1", "一")
    fake.fail_next(status=401, code="Unauthorized")
    await send_text(client, "staff1", "二")
    assert fake.token_requests == 2 and texts(fake) == ["一", "二"]


async def test_a_fresh_token_refused_again_is_retryable_and_not_a_loop(client: DingTalkClient, fake: FakeDingTalk) -> None:
    fake.fail_next(status=401, times=5)
    with pytest.raises(DingTalkRetryable):
        await send_text(client, "staff1", "一")
    assert fake.token_requests == 2 and fake.received == []


async def test_wrong_app_secret_is_rejected(http: httpx.AsyncClient, fake: FakeDingTalk, clock: Clock) -> None:
    with pytest.raises(DingTalkRejected) as rejected:
        await send_text(make_client(http, fake, clock, secret="wrong"), "staff1", "一")
    assert rejected.value.code == "invalidClientIdOrSecret"


# -- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_server_trouble_and_throttling_are_retryable(client: DingTalkClient, fake: FakeDingTalk, status: int) -> None:
    fake.fail_next(status=status)
    with pytest.raises(DingTalkRetryable):
        await send_text(client, "staff1", "一")
    await send_text(client, "staff1", "二")
    assert texts(fake) == ["二"]


async def test_a_token_endpoint_outage_is_retryable(client: DingTalkClient, fake: FakeDingTalk) -> None:
    fake.fail_next(status=503, path=TOKEN_PATH)
    with pytest.raises(DingTalkRetryable):
        await send_text(client, "staff1", "一")


async def test_a_qps_limit_code_is_retryable(client: DingTalkClient, fake: FakeDingTalk) -> None:
    fake.fail_next(status=403, code="Forbidden.AccessDenied.QpsLimitForApi")
    with pytest.raises(DingTalkRetryable):
        await send_text(client, "staff1", "一")


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_other_4xx_are_permanent(client: DingTalkClient, fake: FakeDingTalk, status: int) -> None:
    fake.fail_next(status=status, code="param.invalid")
    with pytest.raises(DingTalkRejected):
        await send_text(client, "staff1", "一")


async def test_a_time_out_is_retryable(client: DingTalkClient, fake: FakeDingTalk) -> None:
    await send_text(client, "staff1", "热身")  # the token is fetched; only the send stalls
    fake.stall_next(CLIENT_TIMEOUT_S * 3)
    with pytest.raises(DingTalkRetryable):
        await send_text(client, "staff1", "一")


async def test_an_unreachable_dingtalk_is_retryable(http: httpx.AsyncClient, fake: FakeDingTalk, clock: Clock) -> None:
    base = fake.base_url
    await fake.close()
    client = DingTalkClient(http, api_base=base, app_key=APP_KEY, app_secret=APP_SECRET,
                            token_cache=MemoryTokenCache(), clock=clock)
    with pytest.raises(DingTalkRetryable):
        await send_text(client, "staff1", "一")


async def test_flow_controlled_is_retryable_and_invalid_staff_is_permanent(client: DingTalkClient, fake: FakeDingTalk) -> None:
    fake.flow_controlled_staff_ids.add("busy")
    fake.invalid_staff_ids.add("gone")
    with pytest.raises(DingTalkRetryable):
        await send_text(client, "busy", "一")
    with pytest.raises(DingTalkRejected):
        await send_text(client, "gone", "一")
    assert fake.received == []


async def test_batch_send_wire_format(client: DingTalkClient, fake: FakeDingTalk) -> None:
    await send_text(client, "staff1", "你好")
    [(path, body)] = fake.requests
    assert path == BATCH_SEND_PATH
    assert body == {"robotCode": APP_KEY, "userIds": ["staff1"], "msgKey": "sampleText",
                    "msgParam": '{"content": "你好"}'}


# -- session webhook ------------------------------------------------------------------------------


async def test_session_reply_needs_no_token(client: DingTalkClient, fake: FakeDingTalk) -> None:
    url = fake.session_webhook_url("cid1", staff_id="staff1")
    await client.session_reply(url, render_webhook(Reply("收到")))
    assert fake.token_requests == 0
    assert [(m.via, m.to, m.conversation) for m in fake.received] == [("session", ("staff1",), "cid1")]


async def test_an_expired_session_is_rejected(client: DingTalkClient, fake: FakeDingTalk) -> None:
    url = fake.session_webhook_url("cid1", staff_id="staff1")
    fake.expire_sessions()
    with pytest.raises(DingTalkRejected) as rejected:
        await client.session_reply(url, render_webhook(Reply("收到")))
    assert "session=" not in str(rejected.value)  # the webhook's credential stays out of logs


# -- the sender -----------------------------------------------------------------------------------


def row(payload: dict[str, object], recipient: str = "staff1") -> OutboxRow:
    return OutboxRow(id=7, channel="dingtalk_chat", kind="message", recipient=recipient, payload=payload,
                     attempts=0, created_at=datetime.now(UTC))


def sender_for(client: DingTalkClient, clock: Clock) -> DingTalkChatSender:
    return DingTalkChatSender(client, clock_ms=lambda: int(clock() * 1000), webhook_hosts=["127.0.0.1"])


async def test_sender_uses_a_valid_session_webhook(client: DingTalkClient, fake: FakeDingTalk, clock: Clock) -> None:
    url = fake.session_webhook_url("cid1", staff_id="staff1")
    hint = SessionWebhook(url, fake.session_expires_ms(url)).hint()
    await sender_for(client, clock).deliver(row({**to_payload(Reply("收到")), SESSION_WEBHOOK: hint}))
    assert [m.via for m in fake.received] == ["session"]


async def test_sender_pushes_when_the_session_has_lapsed(client: DingTalkClient, fake: FakeDingTalk, clock: Clock) -> None:
    url = fake.session_webhook_url("cid1", staff_id="staff1")
    hint = SessionWebhook(url, fake.session_expires_ms(url)).hint()
    clock.now += 5400
    await sender_for(client, clock).deliver(row({**to_payload(Reply("收到")), SESSION_WEBHOOK: hint}))
    assert [(m.via, m.to) for m in fake.received] == [("batch", ("staff1",))]


async def test_sender_translates_failures(client: DingTalkClient, fake: FakeDingTalk, clock: Clock) -> None:
    sender = sender_for(client, clock)
    fake.fail_next(status=503)
    with pytest.raises(RetryableDelivery):
        await sender.deliver(row(to_payload(Reply("一"))))
    fake.invalid_staff_ids.add("gone")
    with pytest.raises(PermanentDelivery):
        await sender.deliver(row(to_payload(Reply("一")), recipient="gone"))
    with pytest.raises(PermanentDelivery):
        await sender.deliver(row({"type": "card"}))  # unrenderable


async def test_a_session_webhook_outage_is_retried_not_pushed(client: DingTalkClient, fake: FakeDingTalk, clock: Clock) -> None:
    url = fake.session_webhook_url("cid1", staff_id="staff1")
    hint = SessionWebhook(url, fake.session_expires_ms(url)).hint()
    fake.fail_next(status=502, path=SESSION_PATH)
    with pytest.raises(RetryableDelivery):
        await sender_for(client, clock).deliver(row({**to_payload(Reply("收到")), SESSION_WEBHOOK: hint}))
    assert fake.received == []


async def test_a_stored_hint_off_the_allowed_hosts_is_pushed_instead(client: DingTalkClient, fake: FakeDingTalk,
                                                                      clock: Clock) -> None:
    """A hint in the outbox (written before the edge checked it, or by hand) never makes the sender post elsewhere."""
    url = fake.session_webhook_url("cid1", staff_id="staff1")
    hint = SessionWebhook(url.replace("127.0.0.1", "localhost"), fake.session_expires_ms(url)).hint()
    await sender_for(client, clock).deliver(row({**to_payload(Reply("地址：上海市浦东新区")), SESSION_WEBHOOK: hint}))
    assert [(m.via, m.to) for m in fake.received] == [("batch", ("staff1",))]
    default = DingTalkChatSender(client, clock_ms=lambda: int(clock() * 1000))  # DingTalk's own hosts only
    await default.deliver(row({**to_payload(Reply("二")), SESSION_WEBHOOK: SessionWebhook(url, 10**14).hint()}))
    assert [m.via for m in fake.received] == ["batch", "batch"]
