"""Typed application keys, defined once."""

from __future__ import annotations

from aiohttp import web

from config.settings import Settings
from handlers.bus import MessageBus
from integrations.db.engine import Database

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
BUS = web.AppKey("bus", MessageBus)
