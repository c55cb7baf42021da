"""The real `orderbot serve` (and `check`, `users add`) at DEBUG, with every secret set to a known value: not one of
them, nor an access token the platforms handed out, appears anywhere in what the processes logged — in text and
in JSON. The JSON lines are JSON, and a line of an inbound message's work names its message id."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from integrations.db import migrate
from integrations.fakes.dingtalk import FakeDingTalk
from integrations.fakes.wecom import FakeWeCom
from integrations.fakes.wecom_signer import sign_callback, sign_url_verification, text_xml
from tests.faults.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
CORP_ID = "ww5e1f00c0ffee1234"
SECRETS = {
    "ORDERBOT_API__TOKEN": "api-token-S3CR3T-0b6c1f4e9a2d7",
    "ORDERBOT_WECOM__SECRET": "wecom-secret-S3CR3T-77f1c2",
    "ORDERBOT_WECOM__TOKEN": "cbTokenS3CR3T9q8w7e6r",
    "ORDERBOT_WECOM__AES_KEY": "S3CR3TkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRTo",
    "ORDERBOT_WECOM__ROBOT_KEY": "robot-key-S3CR3T-5a5a5a",
    "ORDERBOT_DINGTALK__APP_SECRET": "ding-secret-S3CR3T-4d4d4d",
    "ORDERBOT_DINGTALK__CARD_CALLBACK_SECRET": "card-secret-S3CR3T-3c3c3c",
    "ORDERBOT_LOGISTICS__KEY": "kuaidi-key-S3CR3T-2b2b2b",
    "ORDERBOT_LOGISTICS__SALT": "kuaidi-salt-S3CR3T-1a1a1a",
    "ORDERBOT_GEO__KEY": "amap-key-S3CR3T-9f9f9f",
}
SUBSCRIBER_SECRET = "subscriber-S3CR3T-8e8e8e8e"


def environment(tmp_path: Path, wecom: FakeWeCom, dingtalk: FakeDingTalk, port: int, log_format: str) -> dict[str, str]:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'orderbot.db'}"
    migrate.upgrade(db_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERBOT_")}
    env.update(SECRETS)
    env.update({
        "ORDERBOT_DATABASE_URL": db_url, "ORDERBOT_HTTP__PORT": str(port), "ORDERBOT_LOG_LEVEL": "DEBUG",
        "ORDERBOT_LOG_FORMAT": log_format, "ORDERBOT_LOG_LEVELS": '{"transitions": "DEBUG"}',
        "ORDERBOT_WECOM__CORP_ID": CORP_ID, "ORDERBOT_WECOM__AGENT_ID": str(wecom.agent_id),
        "ORDERBOT_WECOM__API_BASE": wecom.base_url,
        "ORDERBOT_DINGTALK__APP_KEY": dingtalk.app_key, "ORDERBOT_DINGTALK__API_BASE": dingtalk.base_url,
        "ORDERBOT_GEO__API_BASE": "http://127.0.0.1:1",
        "ORDERBOT_EVENTS__SUBSCRIBERS": json.dumps({"erp": {"url": "http://127.0.0.1:1/hook",
                                                            "secret": SUBSCRIBER_SECRET}}),
    })
    return env


def cli(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run([sys.executable, "-m", "bot.cli", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    return done.stdout + done.stderr


async def until(condition: object, what: str, deadline_s: float = 30.0) -> None:
    start = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - start < deadline_s, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_serve_at_debug_logs_no_secret(tmp_path: Path, log_format: str) -> None:
    port = free_port()
    async with FakeWeCom(corp_id=CORP_ID, secret=SECRETS["ORDERBOT_WECOM__SECRET"]) as wecom, \
            FakeDingTalk(app_secret=SECRETS["ORDERBOT_DINGTALK__APP_SECRET"]) as dingtalk:
        env = await asyncio.to_thread(environment, tmp_path, wecom, dingtalk, port, log_format)
        logs = [await asyncio.to_thread(cli, env, "users", "add", "sup1", "--name", "李敏", "--role", "supervisor"),
                await asyncio.to_thread(cli, env, "check")]
        assert "检查通过" in logs[1] or "提醒" in logs[1], logs[1]
        log_path = tmp_path / "serve.log"
        with log_path.open("wb") as out:
            serve = await asyncio.to_thread(subprocess.Popen, [sys.executable, "-m", "bot.cli", "serve"], cwd=ROOT, env=env,
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=5) as http:
                async def healthy() -> bool:
                    assert serve.poll() is None, log_path.read_text()[-3000:]
                    try:
                        return (await http.get(base + "/healthz")).status_code == 200
                    except httpx.HTTPError:
                        return False

                start = time.monotonic()
                while not await healthy():
                    assert time.monotonic() - start < 60, "serve did not come up"
                    await asyncio.sleep(0.2)
                token, aes_key = SECRETS["ORDERBOT_WECOM__TOKEN"], SECRETS["ORDERBOT_WECOM__AES_KEY"]
                verify = sign_url_verification(token, aes_key, CORP_ID, "echo-1", int(time.time()), "n1")
                assert (await http.get(base + "/wecom/callback", params=verify)).text == "echo-1"
                xml = text_xml("sup1", "帮助", "7001", int(time.time()), corp_id=CORP_ID)
                query, body = sign_callback(token, aes_key, CORP_ID, xml, int(time.time()), "n2")
                assert (await http.post(base + "/wecom/callback", params=query, content=body)).status_code == 200
                bearer = {"Authorization": "Bearer " + SECRETS["ORDERBOT_API__TOKEN"]}
                assert (await http.get(base + "/api/v1/orders/SO-404", headers=bearer)).status_code == 404
                wrong = {"Authorization": "Bearer " + SECRETS["ORDERBOT_API__TOKEN"][:-1] + "X"}
                assert (await http.get(base + "/api/v1/orders/SO-1", headers=wrong)).status_code == 401
                await until(lambda: wecom.messages, "the reply to reach the fake WeCom")
        finally:
            serve.send_signal(signal.SIGINT)
            await asyncio.to_thread(serve.wait, 30)
        logs.append(log_path.read_text(encoding="utf-8"))
        issued = list(wecom._tokens) + list(dingtalk._tokens)
    everything = "\n".join(logs)
    assert "DEBUG" in everything and "帮助" not in SECRETS.values()  # logged at DEBUG
    assert issued, "no access token was handed out: the sends did not happen"
    leaked = [name for name, value in {**SECRETS, "subscriber": SUBSCRIBER_SECRET}.items() if value in everything]
    leaked += [f"access token {t[:6]}…" for t in issued if t in everything]
    assert leaked == [], f"in the log: {leaked}"
    if log_format == "json":
        lines = [line for line in logs[2].splitlines() if line.strip()]
        assert [line for line in lines if not line.startswith("{")] == []  # nothing but JSON objects
        records = [json.loads(line) for line in lines]
        assert {"time", "level", "logger", "message"} <= set(records[0])
        assert any(r.get("message_id") for r in records)  # the inbound message's work names it
    else:
        assert "[msg=" in logs[2]
