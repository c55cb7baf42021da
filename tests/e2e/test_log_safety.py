"""Logs as `serve` writes them: no secret or token at any level, and no line a sender can forge."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest

from bot.logsafe import QUIET_LOGGERS, SafeFormatter, configure_logging
from config.settings import Settings
from integrations.fakes.wecom import GETTOKEN_PATH
from tests.e2e.conftest import AES_KEY, API_TOKEN, SECRET, TOKEN, Chat

RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


@pytest.fixture
def captured_log(e2e_settings: Settings) -> Iterator[io.StringIO]:
    """The log exactly as `orderbot serve` sets it up, at DEBUG, into a buffer."""
    root = logging.getLogger()
    saved = root.level, {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    buffer = io.StringIO()
    handler = configure_logging(e2e_settings, level=logging.DEBUG, stream=buffer)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(saved[0])
    for name, level in saved[1].items():
        logging.getLogger(name).setLevel(level)


async def test_a_wecom_send_at_debug_logs_neither_the_secret_nor_a_token(chat: Chat, captured_log: io.StringIO) -> None:
    await chat.add_user("sup1", "李敏", "supervisor")
    assert await chat.say("sup1", "帮助") == 200
    await chat.settle()
    chat.fake.expire_tokens()  # a refused token: refetched and the send repeated
    assert await chat.say("sup1", "帮助 查询") == 200
    await chat.settle()
    chat.fake.fail_next(status=502)  # a failed send, to be retried: its error goes to the log
    assert await chat.say("sup1", "帮助 拣货") == 200
    await chat.settle()
    chat.fake.fail_next(status=400, path=GETTOKEN_PATH)  # a refused token fetch: the row dies, logged
    chat.fake.expire_tokens()
    assert await chat.say("sup1", "帮助 打包") == 200
    await chat.settle()
    log = captured_log.getvalue()
    assert chat.fake.token_requests >= 2 and chat.received("sup1")  # sends and token fetches did happen
    assert "aiohttp.access" in log and logging.getLogger("bot").isEnabledFor(logging.DEBUG)  # written, at DEBUG
    tokens = list(chat.fake._tokens)
    assert tokens
    leaked = [s for s in (SECRET, TOKEN, AES_KEY, API_TOKEN, *tokens) if s in log]
    assert leaked == [], f"secrets in the log: {leaked}"
    assert "corpsecret=" not in log.replace("corpsecret=***", "")
    assert "access_token=" not in log.replace("access_token=***", "")


async def test_the_url_logging_libraries_stay_at_warning(captured_log: io.StringIO) -> None:
    for name in ("httpx", "httpcore", "aiosqlite", "sqlalchemy.engine"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    logging.getLogger("httpx").info("HTTP Request: GET https://qyapi/cgi-bin/gettoken?corpsecret=leak")
    assert "leak" not in captured_log.getvalue()


async def test_a_newline_in_a_path_cannot_forge_a_log_line(chat: Chat, captured_log: io.StringIO) -> None:
    forged = "2026-01-01 00:00:00,000 INFO bot.api: order SO1 refunded by sup1"
    response = await chat.client.get("/api/v1/orders/SO1%0D%0A" + forged.replace(" ", "%20") + "%E2%80%A8x%00")
    assert response.status == 401
    lines = captured_log.getvalue().splitlines()
    assert any("SO1" in line for line in lines)  # the refusal was logged ...
    assert all(RECORD_START.match(line) or line.startswith("    ") for line in lines)  # ... on its own line
    assert not any(line.startswith(forged) for line in lines)


def test_a_traceback_cannot_start_a_line_of_its_own() -> None:
    formatter = SafeFormatter(["s3cr3t-value"])
    try:
        raise ValueError("bad waybill SF1\n2026-01-01 00:00:00,000 INFO forged s3cr3t-value")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed for %s", ("SF1\r\nINFO forged",),
                                   exc_info=__import__("sys").exc_info())
    text = formatter.format(record)
    first, *rest = text.split("\n")
    assert "SF1\\r\\nINFO forged" in first
    assert rest and all(line.startswith("    ") for line in rest)
    assert "s3cr3t-value" not in text


@pytest.mark.parametrize("line", [
    "GET https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=abcDEF123456",
    "POST /cgi-bin/message/send?access_token=TOKEN123456789 failed",
    'answer {"errcode": 0, "access_token": "TOKEN123456789", "expires_in": 7200}',
    "webhook https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=ROBOT-KEY-123456",
    "Authorization: Bearer TOKEN123456789",
    "postgresql+asyncpg://orderbot:TOKEN123456789@db/orderbot",
])
def test_secrets_are_masked_by_shape(line: str) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (line,), None)
    text = SafeFormatter().format(record)
    assert "TOKEN123456789" not in text and "abcDEF123456" not in text and "ROBOT-KEY-123456" not in text
