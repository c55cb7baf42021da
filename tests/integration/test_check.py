"""`orderbot check`, `serve` and `db current` as an admin meets them: each misconfiguration is one line saying
what to do, through the real CLI (main(), or a subprocess where the whole stderr counts)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot import cli
from bot.logsafe import QUIET_LOGGERS, configure_logging
from config.settings import Settings
from integrations.db import migrate
from integrations.fakes.dingtalk import FakeDingTalk
from integrations.fakes.wecom import GETTOKEN_PATH, FakeWeCom
from tests.e2e.conftest import AES_KEY, CORP_ID, SECRET, TOKEN

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "orderbot.example.toml"
GOOD_TOKEN = "k2F9-rX0pQ7mZ4vB1nC8sD3fG6hJ5tLw"
UNREACHABLE_PG = "postgresql+asyncpg://orderbot:pw@127.0.0.1:1/orderbot"


@dataclass
class Ran:
    code: int
    out: list[str]
    err: list[str]

    @property
    def lines(self) -> list[str]:
        return self.out + self.err


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[pytest.MonkeyPatch]:
    """No ORDERBOT_ variable from the shell; a migrated database and a real API token to start from."""
    for name in [n for n in os.environ if n.upper().startswith("ORDERBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ORDERBOT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("ORDERBOT_API__TOKEN", GOOD_TOKEN)
    monkeypatch.setattr(cli.web, "run_app", lambda app, **kwargs: None)  # serve: stop where it would listen
    yield monkeypatch
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ == "_StderrHandler":
            root.removeHandler(handler)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Ran:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return Ran(code, captured.out.splitlines(), [line for line in captured.err.splitlines() if line.strip()])


async def run_async(capsys: pytest.CaptureFixture[str], *argv: str) -> Ran:
    """main() runs its own event loop: in a thread, while the fakes serve on this one."""
    code = await asyncio.to_thread(cli.main, list(argv))
    captured = capsys.readouterr()
    return Ran(code, captured.out.splitlines(), [line for line in captured.err.splitlines() if line.strip()])


def wecom_env(env: pytest.MonkeyPatch, fake: FakeWeCom, *, secret: str = SECRET, corp_id: str = CORP_ID) -> None:
    env.setenv("ORDERBOT_WECOM__CORP_ID", corp_id)
    env.setenv("ORDERBOT_WECOM__SECRET", secret)
    env.setenv("ORDERBOT_WECOM__AGENT_ID", str(fake.agent_id))
    env.setenv("ORDERBOT_WECOM__TOKEN", TOKEN)
    env.setenv("ORDERBOT_WECOM__AES_KEY", AES_KEY)
    env.setenv("ORDERBOT_WECOM__API_BASE", fake.base_url)


@pytest.fixture
async def wecom() -> Any:
    async with FakeWeCom(corp_id=CORP_ID, secret=SECRET) as fake:
        yield fake


def test_a_good_configuration_passes(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    ran = run(capsys, "check")
    assert ran.code == 0 and ran.out == ["检查通过：配置、数据库版本和平台凭证都没有问题。"]


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("ORDERBOT_WECOM__AES_KEY", "", "ORDERBOT_WECOM__AES_KEY"),  # token set, key empty: every callback refused
    ("ORDERBOT_WECOM__AES_KEY", "too-short-key", "43 位"),
    ("ORDERBOT_WECOM__AES_KEY", AES_KEY[:-1] + "!", "43 位"),  # 43 characters, not base64
])
async def test_a_missing_or_malformed_aes_key_is_one_line(env: pytest.MonkeyPatch, wecom: FakeWeCom,
                                                          capsys: pytest.CaptureFixture[str], variable: str, value: str,
                                                          named: str) -> None:
    wecom_env(env, wecom)
    env.setenv(variable, value)
    ran = await run_async(capsys, "check")
    assert ran.code == 1 and len(ran.lines) == 1 and ran.lines[0].startswith("错误：") and named in ran.lines[0]
    served = await run_async(capsys, "serve")
    assert served.code == 2 and len(served.err) == 1 and served.err[0].startswith("拒绝启动：")


def test_corp_id_without_secret_and_agent_id_is_one_line(env: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    env.setenv("ORDERBOT_WECOM__CORP_ID", CORP_ID)
    env.setenv("ORDERBOT_WECOM__TOKEN", TOKEN)
    env.setenv("ORDERBOT_WECOM__AES_KEY", AES_KEY)
    ran = run(capsys, "check")
    assert ran.code == 1 and len(ran.lines) == 1
    assert "ORDERBOT_WECOM__SECRET" in ran.lines[0] and "ORDERBOT_WECOM__AGENT_ID" in ran.lines[0]


@pytest.mark.parametrize("token", ["change-me", "a-long-random-token", "short-token"])
def test_a_known_or_short_token_off_loopback_stops_serve(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                         token: str) -> None:
    env.setenv("ORDERBOT_HTTP__HOST", "0.0.0.0")
    env.setenv("ORDERBOT_API__TOKEN", token)
    served = run(capsys, "serve")
    assert served.code == 2 and len(served.err) == 1 and "ORDERBOT_API__TOKEN" in served.err[0]
    assert run(capsys, "check").code == 1


def test_the_example_file_does_not_serve_until_its_token_is_set(env: pytest.MonkeyPatch, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 sqlite_url: str) -> None:
    copy = tmp_path / "orderbot.toml"
    text = EXAMPLE.read_text(encoding="utf-8").replace('"postgresql+asyncpg://orderbot@127.0.0.1:5432/orderbot"',
                                                        f'"{sqlite_url}"')
    copy.write_text(text, encoding="utf-8")
    env.delenv("ORDERBOT_API__TOKEN")
    env.delenv("ORDERBOT_DATABASE_URL")
    env.setenv("ORDERBOT_CONFIG", str(copy))
    served = run(capsys, "serve")
    assert served.code == 2 and served.err == [
        "拒绝启动：ORDERBOT_API__TOKEN 为空：请设置一个足够长的随机令牌（secrets.token_urlsafe(32)）。"]
    copy.write_text(text.replace('host = "127.0.0.1"', 'host = "0.0.0.0"').replace('token = ""', 'token = "change-me"', 1),
                    encoding="utf-8")
    served = run(capsys, "serve")
    assert served.code == 2 and len(served.err) == 1 and "change-me" in served.err[0] and "0.0.0.0" in served.err[0]


@pytest.mark.parametrize(("toml", "named", "closest"), [
    ('[wecom]\nsecert = "x"\n', "wecom.secert", "wecom.secret"),
    ('[htpp]\nport = 9000\n', "[htpp]", "http"),
    ('log_levle = "DEBUG"\n', "log_levle", "log_level"),
])
def test_a_typo_in_the_file_is_an_error_naming_the_key(env: pytest.MonkeyPatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str], toml: str, named: str,
                                                       closest: str) -> None:
    path = tmp_path / "orderbot.toml"
    path.write_text(toml, encoding="utf-8")
    env.setenv("ORDERBOT_CONFIG", str(path))
    for command in ("check", "serve"):
        ran = run(capsys, command)
        assert ran.code == 2 and len(ran.err) == 1, ran
        assert named in ran.err[0] and f"是不是 {closest}" in ran.err[0] and str(path) in ran.err[0]


def test_a_wrong_value_is_one_line_per_setting(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env.setenv("ORDERBOT_HTTP__PORT", "eighty")
    env.setenv("ORDERBOT_LOG_LEVEL", "LOUD")
    ran = run(capsys, "check")
    assert ran.code == 2 and len(ran.err) == 2
    assert any("ORDERBOT_HTTP__PORT" in line for line in ran.err) and any("ORDERBOT_LOG_LEVEL" in line for line in ran.err)


def test_a_typo_in_an_environment_variable_is_a_reminder(env: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    env.setenv("ORDERBOT_WECOM__SECERT", "x")
    env.setenv("ORDERBOT_SLA__MINUTES__PICKING", "30")  # a dict setting's key: known
    ran = run(capsys, "check")
    assert ran.code == 0 and ran.out == ["提醒：环境变量 ORDERBOT_WECOM__SECERT 不对应任何设置，已被忽略，"
                                         "是不是 ORDERBOT_WECOM__SECRET？"]


@pytest.mark.parametrize("command", [["check"], ["serve"], ["users", "list"], ["db", "current"]])
def test_a_database_without_migrations_is_one_line(env: pytest.MonkeyPatch, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    env.setenv("ORDERBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    ran = run(capsys, *command)
    assert ran.code != 0 and len(ran.lines) == 1 and "orderbot db upgrade" in ran.lines[0], ran


@pytest.mark.parametrize("command", [["check"], ["serve"], ["users", "list"], ["db", "current"], ["db", "upgrade"]])
def test_an_unreachable_postgresql_is_one_line(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                               command: list[str]) -> None:
    env.setenv("ORDERBOT_DATABASE_URL", UNREACHABLE_PG)
    ran = run(capsys, *command)
    assert ran.code != 0 and len(ran.lines) == 1, ran
    assert "无法连接数据库" in ran.lines[0] and "127.0.0.1:1" in ran.lines[0] and ":pw@" not in ran.lines[0]


def test_serve_on_an_unreachable_postgresql_writes_one_line_and_no_traceback(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORDERBOT_")}
    environ.update({"ORDERBOT_DATABASE_URL": UNREACHABLE_PG, "ORDERBOT_API__TOKEN": GOOD_TOKEN})
    done = subprocess.run([sys.executable, "-m", "bot.cli", "serve"], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr and "无法连接数据库" in done.stderr


def test_db_current_says_whether_the_schema_is_the_newest(env: pytest.MonkeyPatch, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    ran = run(capsys, "db", "current")
    assert ran.code == 0 and ran.out[0].startswith(f"数据库版本 {migrate.head_revision()}，已是最新")
    older = f"sqlite+aiosqlite:///{tmp_path / 'older.db'}"
    migrate.upgrade(older, "0010")
    env.setenv("ORDERBOT_DATABASE_URL", older)
    ran = run(capsys, "db", "current")
    assert ran.code == 1 and ran.out[0].startswith(f"数据库版本 0010，最新版本 {migrate.head_revision()}")
    checked = run(capsys, "check")
    assert checked.code == 1 and checked.out == [f"错误：数据库版本 0010 落后于 {migrate.head_revision()}：请运行 orderbot db upgrade。"]


# -- one gettoken call to each configured platform ---------------------------------------------------------------

async def test_good_wecom_credentials_pass_with_one_token_call(env: pytest.MonkeyPatch, wecom: FakeWeCom,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    wecom_env(env, wecom)
    ran = await run_async(capsys, "check")
    assert ran.code == 0 and ran.out == ["检查通过：配置、数据库版本和平台凭证都没有问题。"]
    assert wecom.token_requests == 1


@pytest.mark.parametrize(("kind", "errcode", "named"), [
    ("secret", 40001, "ORDERBOT_WECOM__SECRET"),
    ("corp_id", 40013, "ORDERBOT_WECOM__CORP_ID"),
    ("ip", 60020, "企业可信IP"),
])
async def test_refused_wecom_credentials_are_one_line_and_stop_serve(
    env: pytest.MonkeyPatch, wecom: FakeWeCom, capsys: pytest.CaptureFixture[str], kind: str, errcode: int, named: str,
) -> None:
    wecom_env(env, wecom, secret="wrong" if kind == "secret" else SECRET,
              corp_id="ww-wrong" if kind == "corp_id" else CORP_ID)
    for command in ("check", "serve"):
        if kind == "ip":
            wecom.fail_next(errcode=60020, path=GETTOKEN_PATH)
        ran = await run_async(capsys, command)
        assert ran.code != 0 and len(ran.lines) == 1, ran
        assert f"errcode {errcode}" in ran.lines[0] and named in ran.lines[0]


async def test_wecom_out_of_reach_is_a_reminder_and_serve_starts(env: pytest.MonkeyPatch, wecom: FakeWeCom,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    wecom_env(env, wecom)
    wecom.go_down()
    ran = await run_async(capsys, "check")
    assert ran.code == 0 and len(ran.lines) == 1 and ran.lines[0].startswith("提醒：连不上企业微信")
    served = await run_async(capsys, "serve")
    assert served.code == 0 and len(served.err) == 1 and "连不上企业微信" in served.err[0]


async def test_a_wrong_dingtalk_secret_is_one_line(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    async with FakeDingTalk(app_key="ding-key", app_secret="ding-secret") as fake:
        env.setenv("ORDERBOT_DINGTALK__APP_KEY", "ding-key")
        env.setenv("ORDERBOT_DINGTALK__API_BASE", fake.base_url)
        env.setenv("ORDERBOT_DINGTALK__APP_SECRET", "ding-secret")
        assert (await run_async(capsys, "check")).code == 0 and fake.token_requests == 1
        env.setenv("ORDERBOT_DINGTALK__APP_SECRET", "not-the-secret")
        ran = await run_async(capsys, "check")
    assert ran.code == 1 and len(ran.lines) == 1 and "ORDERBOT_DINGTALK__APP_SECRET" in ran.lines[0]


def test_dingtalk_key_without_secret_is_one_line(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env.setenv("ORDERBOT_DINGTALK__APP_KEY", "ding-key")
    ran = run(capsys, "check")
    assert ran.code == 1 and len(ran.lines) == 1 and "ORDERBOT_DINGTALK__APP_SECRET" in ran.lines[0]


# -- logging set-up ------------------------------------------------------------------------------------------

@pytest.fixture
def restored_levels() -> Iterator[None]:
    names = ("transitions", *QUIET_LOGGERS)
    saved = logging.getLogger().level, {name: logging.getLogger(name).level for name in names}
    handlers = list(logging.getLogger().handlers)
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(saved[0])
    for name, level in saved[1].items():
        logging.getLogger(name).setLevel(level)


def test_transitions_is_held_at_warning_unless_named(restored_levels: None) -> None:
    configure_logging(Settings(log_level="DEBUG"))
    assert not logging.getLogger("transitions").isEnabledFor(logging.INFO)
    assert logging.getLogger("bot").isEnabledFor(logging.DEBUG)
    configure_logging(Settings(log_level="DEBUG", log_levels={"transitions": "info", "httpx": "DEBUG"}))
    assert logging.getLogger("transitions").isEnabledFor(logging.INFO)
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)  # never: it logs token URLs
