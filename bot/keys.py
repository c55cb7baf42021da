"""Typed application keys, defined once."""

from __future__ import annotations

from aiohttp import web

from bot.inbound_queue import InboundQueue
from bot.metrics import Metrics
from bot.pacing import AckPacer
from config.settings import Settings
from handlers.bus import MessageBus
from integrations.db.engine import Database
from integrations.delivery.dispatcher import OutboxDispatcher
from integrations.dingtalk.client import DingTalkClient
from integrations.wecom.client import WeComClient

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
BUS = web.AppKey("bus", MessageBus)
INBOUND_QUEUE = web.AppKey("inbound_queue", InboundQueue)
DISPATCHER = web.AppKey("dispatcher", OutboxDispatcher)
WECOM_CLIENT = web.AppKey("wecom_client", WeComClient)
DINGTALK_CLIENT = web.AppKey("dingtalk_client", DingTalkClient)
PACER = web.AppKey("pacer", AckPacer)
METRICS = web.AppKey("metrics", Metrics)
