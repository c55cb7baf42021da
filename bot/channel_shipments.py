"""Channels told back, wired into the app: the outbox sender of channel "channel_ship" with a platform sender for each
channel configured (Douyin's ship-confirm through the Douyin client; WeChat's shipping-info upload when the
mini-program's APP_ID, SECRET and MCH_ID are set), and customer service's task when a row dies."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
from aiohttp import web

from bot import channels_douyin
from bot.keys import DB, SETTINGS
from domain.clock import utcnow
from domain.outbox_systems import CHANNEL_SHIP
from integrations.channels.douyin.shipping import DouyinShipConfirm
from integrations.channels.miniprogram.shipping import MiniprogramShippingUpload, WeChatShippingClient
from integrations.channels.shipments import ChannelShipSender, ShipmentDeadRows, revive_unconfigured
from integrations.db.tokens import DbTokenCache
from integrations.delivery.dispatcher import Sender

log = logging.getLogger(__name__)
SHIP_DEAD = web.AppKey("ship_dead", ShipmentDeadRows)
WECHAT_SHIPPING = web.AppKey("wechat_shipping", WeChatShippingClient)


async def channel_ship_ctx(app: web.Application) -> AsyncIterator[None]:
    """The dead-row task, and WeChat's client (its own connection pool) when shipments can be uploaded."""
    app[SHIP_DEAD] = ShipmentDeadRows(app[DB])
    settings = app[SETTINGS]
    configured = [kind for kind, on in (("douyin", settings.douyin.enabled),
                                        ("miniprogram", settings.miniprogram.shipping_enabled)) if on]
    await revive_unconfigured(app[DB], configured, utcnow())
    cfg = settings.miniprogram
    if not cfg.shipping_enabled:
        if cfg.enabled:
            log.warning("miniprogram.mch_id is not set: shipments are not uploaded to WeChat (发货信息录入)")
        yield
        return
    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout_s)) as http:
        app[WECHAT_SHIPPING] = WeChatShippingClient(http, api_base=cfg.api_base, app_id=cfg.app_id,
                                                    secret=cfg.secret.get_secret_value(), token_cache=DbTokenCache(app[DB]))
        yield


def ship_senders(app: web.Application) -> dict[str, Sender]:
    settings, platforms = app[SETTINGS], dict[str, Sender]()
    douyin = app.get(channels_douyin.CLIENT)
    if douyin is not None:
        platforms["douyin"] = DouyinShipConfirm(douyin, settings.douyin.company_codes)
    wechat = app.get(WECHAT_SHIPPING)
    if wechat is not None:
        platforms["miniprogram"] = MiniprogramShippingUpload(wechat, mch_id=settings.miniprogram.mch_id,
                                                             express_codes=settings.miniprogram.express_codes)
    return {CHANNEL_SHIP: ChannelShipSender(platforms)}
