"""The dashboard in a real browser (chromium, phone-sized and desktop): the link from `概况` logs in, the figures
of the seeded month show, the consistency score is yellow below 98.5 %, the range tabs switch, charts are drawn.
Screenshots: var/screenshots/dashboard.png (phone) and dashboard-desktop.png."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from bot.app import create_app
from bot.dashboard import link_maker
from bot.keys import BUS
from config.settings import ApiSettings, DashboardSettings, Settings
from integrations.db.engine import Database
from tests.integration.health_seed import NOW, H, consistency_scores, seed

pytestmark = pytest.mark.browser

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
PHONE = {"width": 390, "height": 844}


async def test_dashboard_shows_the_figures_and_the_yellow_state(
        aiohttp_server: ServerFactory, sqlite_url: str, browser: Any, screenshots: Path) -> None:
    db = Database(sqlite_url)
    await seed(db)
    settings = Settings(database_url=sqlite_url, api=ApiSettings(token=SecretStr("browser-api-token")),
                        dashboard=DashboardSettings(secret=SecretStr("browser-dashboard-secret"),
                                                    public_url="http://127.0.0.1"))
    server = await aiohttp_server(create_app(settings, deliver=False))
    server.app[BUS].deps.clock = lambda: NOW
    maker = link_maker(settings)
    assert maker is not None
    link = urlsplit(maker("mgr1", NOW))
    url = f"http://127.0.0.1:{server.port}{link.path}?{link.query}"

    async with consistency_scores(db, ("hour", NOW - 3 * H, 99.6), ("hour", NOW - 2 * H, 98.9),
                                  ("hour", NOW - H, 97.2)):
        page = await browser.new_page(viewport=PHONE, device_scale_factor=2, locale="zh-CN")
        await page.goto(url)
        assert urlsplit(page.url).path == "/dashboard" and "t=" not in page.url  # the token left the address bar
        await page.wait_for_selector("body[data-loaded='1']")
        await page.wait_for_timeout(600)  # the charts' entry animation

        async def figure(name: str) -> str:
            return str(await page.text_content(f"[data-figure='{name}']"))

        assert await figure("processing") == "60 分钟"
        assert await figure("anomaly") == "16.7%"
        assert await figure("consistency") == "97.2%"
        assert await figure("fcr") == "7.5 分钟 / 7.5 分钟"
        assert await figure("exceptions") == "2"
        assert await figure("pushes") == "3 / 1 / 1"
        assert "yellow" in str(await page.get_attribute("#kpi-consistency", "class"))
        for chart in ("processing", "anomaly", "consistency", "fcr", "exceptions", "orders", "pushes"):
            assert await page.locator(f"#chart-{chart} canvas").count() == 1, chart
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"]  # nothing wider than the phone
        await page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)

        await page.click("button[data-range='7d']")
        assert await figure("anomaly") == "15.4%"
        assert await figure("processing") == "90 分钟"

        desktop = await browser.new_page(viewport={"width": 1280, "height": 900})
        await desktop.goto(url)
        await desktop.wait_for_selector("body[data-loaded='1']")
        await desktop.wait_for_timeout(600)
        await desktop.screenshot(path=str(screenshots / "dashboard-desktop.png"), full_page=True)
    await db.dispose()


async def test_an_expired_link_shows_the_chinese_page(
        aiohttp_server: ServerFactory, sqlite_url: str, browser: Any) -> None:
    settings = Settings(database_url=sqlite_url, dashboard=DashboardSettings(
        secret=SecretStr("browser-dashboard-secret"), public_url="http://127.0.0.1"))
    server = await aiohttp_server(create_app(settings, deliver=False))
    server.app[BUS].deps.clock = lambda: NOW
    maker = link_maker(settings)
    assert maker is not None
    link = urlsplit(maker("mgr1", NOW - timedelta(minutes=16)))
    page = await browser.new_page(viewport=PHONE)
    response = await page.goto(f"http://127.0.0.1:{server.port}{link.path}?{link.query}")
    assert response.status == 401
    assert "链接已过期" in str(await page.text_content("h2"))
