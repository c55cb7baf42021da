"""`orderbot serve` will not face a network with a token everyone knows, and sets up the safe log."""

from __future__ import annotations

import os
from typing import Any

import pytest

from bot import cli
from bot.logsafe import SafeFormatter
from integrations.db import migrate


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database at the newest schema: `serve` checks it before it starts."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('serve') / 'serve.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, migrated: str) -> list[dict[str, Any]]:
    """Calls to web.run_app, instead of serving."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(cli.web, "run_app", lambda app, **kwargs: calls.append(kwargs))
    for name in [n for n in os.environ if n.upper().startswith("ORDERBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ORDERBOT_DATABASE_URL", migrated)
    return calls


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "orderbot.example.com", "192.168.1.2"])
def test_the_default_token_is_refused_off_loopback(started: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], host: str) -> None:
    monkeypatch.setenv("ORDERBOT_HTTP__HOST", host)
    assert cli.main(["serve"]) == 2
    assert started == []
    assert "change-me" in capsys.readouterr().err


@pytest.mark.parametrize("token", ["", "   "])
def test_an_empty_token_is_refused_everywhere(started: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str], token: str) -> None:
    monkeypatch.setenv("ORDERBOT_HTTP__HOST", "127.0.0.1")
    monkeypatch.setenv("ORDERBOT_API__TOKEN", token)
    assert cli.main(["serve"]) == 2
    assert started == [] and "为空" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_the_default_token_is_allowed_on_loopback(started: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
                                                  host: str) -> None:
    monkeypatch.setenv("ORDERBOT_HTTP__HOST", host)
    assert cli.main(["serve"]) == 0
    assert [call["host"] for call in started] == [host]


def test_a_real_token_serves_anywhere_with_the_safe_log(started: list[dict[str, Any]],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    monkeypatch.setenv("ORDERBOT_HTTP__HOST", "0.0.0.0")
    monkeypatch.setenv("ORDERBOT_API__TOKEN", "a-long-random-token-0123456789")
    assert cli.main(["serve"]) == 0
    assert [call["host"] for call in started] == ["0.0.0.0"]
    safe = [h for h in logging.getLogger().handlers if isinstance(h.formatter, SafeFormatter)]
    assert len(safe) == 1 and not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    logging.getLogger().removeHandler(safe[0])
