"""The aiohttp application factory: one cleanup context per resource, routes composed explicitly."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot import api, health
from bot.keys import BUS, DB, SETTINGS
from config.settings import Settings
from domain.aftersale import ApprovalPolicy
from handlers.bus import Deps
from handlers.wiring import build_bus
from integrations.db.engine import Database


def deps_from(settings: Settings) -> Deps:
    return Deps(
        policy=ApprovalPolicy(
            auto_limit_fen=round(settings.refund.auto_approve_limit * 100),
            dual_limit_fen=round(settings.refund.dual_approval_limit * 100),
        )
    )


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    db = Database(settings.database_url)
    app[DB] = db
    app[BUS] = build_bus(db, deps_from(settings))
    yield
    await db.dispose()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.http.max_body_bytes, middlewares=[api.api_errors])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(database_ctx)
    app.add_routes(health.routes)
    app.add_routes(api.routes)
    return app
