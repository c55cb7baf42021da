"""Helpers for the edge tests: raw HTTP (bytes a client library would not send), stored-row counts, ERROR logs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.keys import DB
from integrations.db.tables import metadata


async def raw_request(client: TestClient, head: bytes, body: bytes = b"", *, wait_s: float = 5.0) -> int:
    """Send `head` (request line and headers, without the blank line) and `body` as they are; the status."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), wait_s)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def stored_rows(app: Any) -> dict[str, int]:
    """Rows per table: what a request wrote, if it wrote anything."""
    counts: dict[str, int] = {}
    async with app[DB].engine.connect() as conn:
        for table in metadata.sorted_tables:
            counts[table.name] = int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
    return counts


def errors_logged(caplog: Any) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
