"""What start-up builds is kept out of the cyclic collector's scans while the app runs, and given back at shutdown
(bot/app.py startup_objects_frozen): a collection under a flood of callbacks then scans only what they create."""

from __future__ import annotations

import gc
from typing import Any

from bot.app import create_app
from config.settings import Settings


async def test_start_up_objects_are_frozen_while_the_app_runs_and_collectable_after(
    aiohttp_client: Any, e2e_settings: Settings
) -> None:
    assert gc.get_freeze_count() == 0
    client = await aiohttp_client(create_app(e2e_settings, deliver=False))
    try:
        assert gc.get_freeze_count() > 10_000  # the modules, settings, clients and workers start-up made
    finally:
        await client.close()
    assert gc.get_freeze_count() == 0  # a process that starts apps again and again still collects them
