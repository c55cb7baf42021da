"""The server does not load what it seldom uses: each of these held 10-45 MiB of its memory from start-up on."""

from __future__ import annotations

import json
import subprocess
import sys

SELDOM_USED = (
    "pypinyin.phrases_dict",  # names are spelled a character at a time (bot/lexicon.py)
    "nats",  # only when EVENTS__NATS_URL is set (bot/events.py)
    "reportlab",  # only for pdf:// printers (integrations/printing/sender.py)
)


def test_the_app_and_the_cli_start_without_the_seldom_used_libraries() -> None:
    code = "import json, sys; import bot.app, bot.cli; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                                           text=True).stdout))
    assert [name for name in SELDOM_USED if name in loaded] == []

