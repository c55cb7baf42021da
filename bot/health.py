"""Liveness and metrics: /healthz checks the database, /metrics is Prometheus text."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from bot.jsonio import error, ok
from bot.keys import DB, METRICS

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
    """Open like /healthz: counts by bounded labels only (no order number, user id, text or secret)."""
    metrics = request.app[METRICS]
    await metrics.store.refresh(request.app[DB])  # the database gauges, read at most every few seconds
    body = generate_latest(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

