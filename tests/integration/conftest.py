"""Fixtures the platform-client tests (WeCom, DingTalk) share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.integration.helpers import CLIENT_TIMEOUT_S


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that gives up after CLIENT_TIMEOUT_S, so a stalled fake shows as a time-out."""
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
        yield client
