"""`orderbot events replay|status` in-process: the cursor it rewinds and what it prints (bot.cli.main runs
asyncio.run itself, so these are plain synchronous tests)."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.cli import main
from domain.event_wire import WireEvent
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.events import EventStore
from integrations.db.uow import UnitOfWork
from tests.integration.event_bus_support import SECRET, CompressedClock
from tests.integration.helpers import rows


def seed(url: str, events: int, delivered: int) -> list[dict[str, object]]:
    """`events` stored events, and a subscriber `planning` that has had the first `delivered`."""
    async def run() -> list[dict[str, object]]:
        db = Database(url)
        try:
            async with UnitOfWork(db) as uow:
                await uow.store_events([WireEvent("inventory.stock_set", None, {"n": n}) for n in range(events)],
                                       CompressedClock().now())
                await uow.commit()
            store = EventStore(db)
            await store.sequence()
            await store.ensure_cursor("planning")
            await store.rewind("planning", next_id=delivered + 1)
            return await rows(db, t.event_cursors)
        finally:
            await db.dispose()

    return asyncio.run(run())


@pytest.fixture
def configured(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("ORDERBOT_CONFIG", raising=False)
    monkeypatch.setenv("ORDERBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("ORDERBOT_EVENTS__SUBSCRIBERS", json.dumps(
        {"planning": {"url": "http://127.0.0.1:9/events", "secret": SECRET}}))
    return db_url


def test_replay_rewinds_the_subscribers_cursor_to_the_given_event(
    configured: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(configured, events=10, delivered=10)
    assert main(["events", "replay", "--subscriber", "planning", "--from", "4"]) == 0
    out = capsys.readouterr().out
    assert "planning" in out and "4" in out and "共 7 条" in out
    async def cursor() -> int:
        db = Database(configured)
        try:
            [row] = await rows(db, t.event_cursors)
            return int(row["position"])
        finally:
            await db.dispose()
    assert asyncio.run(cursor()) == 3
    assert main(["events", "status"]) == 0
    status = capsys.readouterr().out
    assert "last id 10" in status and "planning\tat 3\tbehind 7\tok" in status


def test_replay_of_an_unknown_subscriber_is_refused_naming_the_known_ones(
    configured: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(configured, events=2, delivered=2)
    assert main(["events", "replay", "--subscriber", "nobody", "--from", "1"]) == 2
    err = capsys.readouterr().err
    assert "nobody" in err and "planning" in err
    assert main(["events", "replay", "--subscriber", "planning", "--from", "0"]) == 2


def test_a_subscriber_with_a_short_secret_is_a_settings_error_that_does_not_print_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ORDERBOT_CONFIG", raising=False)
    monkeypatch.setenv("ORDERBOT_EVENTS__SUBSCRIBERS", '{"planning": {"url": "http://x/e", "secret": "hunter2hunter"}}')
    assert main(["events", "status"]) == 2
    err = capsys.readouterr().err
    assert "secret" in err and "hunter2hunter" not in err
    monkeypatch.setenv("ORDERBOT_EVENTS__SUBSCRIBERS", json.dumps({"jetstream": {"url": "http://x/e", "secret": SECRET}}))
    assert main(["events", "status"]) == 2


def test_a_user_added_from_the_command_line_is_an_event_too(configured: str) -> None:
    assert main(["users", "add", "wh9", "--name", "王强", "--role", "warehouse", "--store", "SH01"]) == 0

    async def stored() -> list[dict[str, object]]:
        db = Database(configured)
        try:
            return await rows(db, t.events)
        finally:
            await db.dispose()

    [event] = asyncio.run(stored())
    assert (event["type"], event["actor"], event["via"]) == ("user.account_saved", "cli", "cli")
    assert event["data"] == {"userid": "wh9", "created": True, "roles": ["warehouse"], "store": "SH01"}
