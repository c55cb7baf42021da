"""Browser tests: Playwright drives Debian's chromium by its executable path (`make test` installs it when
missing; Playwright never downloads a browser). Without chromium they skip locally with the reason, and fail
under CI=true, so a CI run without a browser cannot pass by skipping them."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def chromium_path() -> str | None:
    path = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
    return path if os.access(path, os.X_OK) else shutil.which("chromium")


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true requires the browser tests to run. {reason}")
    pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        _missing("chromium is not installed at /usr/bin/chromium (apt-get install chromium, or `make test` as root)")
    async with async_playwright() as pw:
        # root in CI has no user namespace for chromium's sandbox
        chromium = await pw.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def screenshots() -> Path:
    """Kept after the run as artifacts: var/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
