"""Settings: ORDERBOT_ environment (nested with __), an optional TOML file named by ORDERBOT_CONFIG, env wins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

import config.settings
from config.settings import DEFAULT_DATABASE_URL, Settings, load_settings

EXAMPLE = Path(config.settings.__file__).parent / "orderbot.example.toml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test from no ORDERBOT_ variables, whatever the shell running the tests has set."""
    for name in list(os.environ):
        if name.upper().startswith("ORDERBOT_"):
            monkeypatch.delenv(name)


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "orderbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    s = Settings()
    assert s.database_url == DEFAULT_DATABASE_URL
    assert s.database_url.startswith("sqlite+aiosqlite:///") and "/var/" in s.database_url
    assert (s.http.host, s.http.port) == ("127.0.0.1", 8080)
    assert s.http.max_body_bytes > 0
    assert s.wecom.replay_window_s == 300
    assert s.wecom.api_base == "https://qyapi.weixin.qq.com"
    assert s.dingtalk.api_base.startswith("https://")


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBOT_DATABASE_URL", "postgresql+asyncpg://orderbot@db:5432/orderbot")
    monkeypatch.setenv("ORDERBOT_HTTP__HOST", "0.0.0.0")
    monkeypatch.setenv("ORDERBOT_HTTP__PORT", "9090")
    monkeypatch.setenv("ORDERBOT_API__TOKEN", "t0k")
    monkeypatch.setenv("ORDERBOT_WECOM__CORP_ID", "ww123")
    monkeypatch.setenv("ORDERBOT_WECOM__AGENT_ID", "1000002")
    monkeypatch.setenv("ORDERBOT_WECOM__REPLAY_WINDOW_S", "0")
    monkeypatch.setenv("ORDERBOT_WECOM__API_BASE", "http://127.0.0.1:18080")
    monkeypatch.setenv("ORDERBOT_DINGTALK__APP_KEY", "ding-key")
    monkeypatch.setenv("ORDERBOT_DINGTALK__API_BASE", "http://127.0.0.1:18081")
    s = Settings()
    assert s.database_url == "postgresql+asyncpg://orderbot@db:5432/orderbot"
    assert (s.http.host, s.http.port) == ("0.0.0.0", 9090)
    assert s.api.token.get_secret_value() == "t0k"
    assert (s.wecom.corp_id, s.wecom.agent_id) == ("ww123", 1_000_002)
    assert s.wecom.replay_window_s == 0
    assert s.wecom.api_base == "http://127.0.0.1:18080"
    assert (s.dingtalk.app_key, s.dingtalk.api_base) == ("ding-key", "http://127.0.0.1:18081")


def test_one_nested_variable_keeps_the_other_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBOT_WECOM__REPLAY_WINDOW_S", "60")
    s = Settings()
    assert s.wecom.replay_window_s == 60
    assert s.wecom.api_base == "https://qyapi.weixin.qq.com"


def test_a_value_of_the_wrong_type_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBOT_HTTP__PORT", "eighty")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_the_example_file_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBOT_CONFIG", str(EXAMPLE))
    s = Settings()
    assert s.database_url == "postgresql+asyncpg://orderbot@127.0.0.1:5432/orderbot"
    assert (s.http.host, s.http.port) == ("127.0.0.1", 8080)  # loopback: a proxy in front faces the network
    assert s.api.token.get_secret_value() == ""  # to be filled in: `serve` refuses to start until it is
    assert (s.wecom.corp_id, s.wecom.agent_id) == ("", 0)
    assert s.wecom.replay_window_s == 300
    assert s.wecom.api_base == "https://qyapi.weixin.qq.com"
    assert (s.refund.auto_approve_limit, s.refund.dual_approval_limit) == (200.0, 2000.0)


def test_environment_wins_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBOT_CONFIG", str(EXAMPLE))
    monkeypatch.setenv("ORDERBOT_DATABASE_URL", "sqlite+aiosqlite:///./var/other.db")
    monkeypatch.setenv("ORDERBOT_HTTP__PORT", "9999")
    monkeypatch.setenv("ORDERBOT_WECOM__API_BASE", "http://127.0.0.1:18080")
    s = Settings()
    assert s.database_url == "sqlite+aiosqlite:///./var/other.db"
    assert s.http.port == 9999
    assert s.http.host == "127.0.0.1"  # the rest of [http] still comes from the file
    assert s.wecom.api_base == "http://127.0.0.1:18080"
    assert s.wecom.replay_window_s == 300


def test_a_partial_file_keeps_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(tmp_path, '[wecom]\nreplay_window_s = 0\n\n[api]\ntoken = "from-file"\n')
    monkeypatch.setenv("ORDERBOT_CONFIG", str(path))
    s = Settings()
    assert s.wecom.replay_window_s == 0
    assert s.api.token.get_secret_value() == "from-file"
    assert s.wecom.api_base == "https://qyapi.weixin.qq.com"
    assert s.database_url == DEFAULT_DATABASE_URL
    assert s.http.port == 8080


def test_a_broken_file_stops_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBOT_CONFIG", str(write_toml(tmp_path, "[wecom\n")))
    with pytest.raises(ValueError):
        Settings()


def test_a_wrong_type_in_the_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBOT_CONFIG", str(write_toml(tmp_path, '[http]\nport = "eighty"\n')))
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBOT_DATABASE_URL", "sqlite+aiosqlite:///./var/env.db")
    monkeypatch.setenv("ORDERBOT_API__TOKEN", "from-env")
    s = load_settings(database_url="sqlite+aiosqlite:///./var/arg.db")
    assert s.database_url == "sqlite+aiosqlite:///./var/arg.db"
    assert s.api.token.get_secret_value() == "from-env"
