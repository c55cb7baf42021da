"""Liveness and metrics: /healthz checks the database, /metrics is Prometheus text."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from bot.jsonio import error, ok
from bot.keys import DB
from handlers.metrics import OUTBOX_ROWS
from integrations.sms.outbox import WATCHED, outbox_counts

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    try:
        async with request.app[DB].engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as err:  # a health check reports, it does not crash
        return error(503, "database_unavailable", f"数据库不可用：{type(err).__name__}")
    return ok({"status": "ok"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    await _count_outbox(request)
    body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _count_outbox(request: web.Request) -> None:
    """Rows that are not delivered, read at each scrape: SMS rows set aside as unconfigured show here."""
    try:
        counts = await outbox_counts(request.app[DB])
    except Exception:  # the metrics still answer when the database does not
        return
    channels = {channel for channel, _ in counts} | {"sms"}
    for channel in channels:
        for status in WATCHED:
            OUTBOX_ROWS.labels(channel, status).set(counts.get((channel, status), 0))
