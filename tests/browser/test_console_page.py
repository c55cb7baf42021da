"""The demo console in a real browser: type 查询 as a user and see the reply; click 同意 on a refund card as a
supervisor and see the card updated. Screenshot: var/screenshots/console.png."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.demo import SEEDED, build_demo
from config.settings import Settings

pytestmark = pytest.mark.browser

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


async def test_console_round_trip(aiohttp_server: ServerFactory, sqlite_template: Path, tmp_path: Path,
                                  browser: Any, screenshots: Path) -> None:
    db_path = tmp_path / "demo.db"
    shutil.copy(sqlite_template, db_path)
    app, _fake = await build_demo(Settings(), db_path)
    server = await aiohttp_server(app)
    seeded = app[SEEDED]
    packed = seeded.orders["packed"]
    page = await browser.new_page(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    await page.goto(f"http://127.0.0.1:{server.port}/demo/console?user=wh1")
    await page.wait_for_selector("#say-text:not([disabled])")

    await page.fill("#say-text", f"查询 {packed}")
    await page.press("#say-text", "Enter")
    reply = page.locator("#chat .row:not(.me) .bubble", has_text=packed)
    await reply.first.wait_for(timeout=15_000)
    assert "SF1402600003" in str(await reply.first.text_content())

    await page.click("#user-picker button:has-text('sup1')")
    card = page.locator(".card", has_text="1,500")
    await card.locator("button", has_text="同意").wait_for(timeout=15_000)
    await card.locator("button", has_text="同意").click()
    done = page.locator(".card .done", has_text="同意")
    await done.first.wait_for(timeout=15_000)
    assert await page.locator(".card", has_text="1,500").locator(".buttons").count() == 0
    await page.screenshot(path=str(screenshots / "console.png"))
