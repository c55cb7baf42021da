"""E-waybills wired into the app: the providers whose settings are complete (CAINIAO__, KUAIDI100__), which store
uses which (WAYBILL__PROVIDERS / DEFAULT), the outbox sender of channel "waybill" whose answers run RecordWaybill
through the bus, and the task card for a waybill that could not be taken."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
from aiohttp import web

from bot.keys import BUS, DB, DISPATCHER, SETTINGS
from config.settings import Settings, waybill_provider_for
from domain.outbox_systems import WaybillRequest
from domain.waybills import CAINIAO, KUAIDI100, IssuedWaybill, RecordWaybill
from integrations.delivery.dispatcher import Sender
from integrations.waybills.base import WaybillProvider
from integrations.waybills.cainiao import CainiaoWaybills
from integrations.waybills.dead import WaybillDeadRows
from integrations.waybills.kuaidi100 import Kuaidi100Waybills
from integrations.waybills.sender import CHANNEL, WaybillSender

log = logging.getLogger(__name__)
WAYBILL_PROVIDERS = web.AppKey("waybill_providers", dict[str, WaybillProvider])
WAYBILL_DEAD = web.AppKey("waybill_dead", WaybillDeadRows)


def providers_of(settings: Settings, http: httpx.AsyncClient) -> dict[str, WaybillProvider]:
    found: dict[str, WaybillProvider] = {}
    cn, kd = settings.cainiao, settings.kuaidi100
    if cn.configured:
        found[CAINIAO] = CainiaoWaybills(http, api_base=cn.api_base, provider_id=cn.provider_id,
                                         secret=cn.secret.get_secret_value(), cp_code=cn.cp_code,
                                         template_url=cn.template_url, to_code=cn.to_code)
    if kd.configured:
        found[KUAIDI100] = Kuaidi100Waybills(http, api_base=kd.api_base, key=kd.key, secret=kd.secret.get_secret_value(),
                                             partner_id=kd.partner_id, partner_key=kd.partner_key.get_secret_value(),
                                             kuaidicom=kd.kuaidicom, exp_type=kd.exp_type, pay_type=kd.pay_type)
    return found


async def waybill_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[WAYBILL_DEAD] = WaybillDeadRows(app[DB])
    app[BUS].deps.waybill_provider = waybill_provider_for(settings)
    async with httpx.AsyncClient(timeout=httpx.Timeout(settings.waybill.timeout_s)) as http:
        providers = providers_of(settings, http)
        app[WAYBILL_PROVIDERS] = providers
        wanted = set(settings.waybill.providers.values()) | ({settings.waybill.default} - {""})
        for name in sorted(wanted - set(providers)):
            log.warning("e-waybill provider %s is chosen for some stores but its settings are incomplete: those "
                        "stores type their waybills at 发货", name)
        yield


def waybill_senders(app: web.Application) -> dict[str, Sender]:
    bus = app[BUS]

    async def record(request: WaybillRequest, issued: IssuedWaybill) -> None:
        await bus.handle(RecordWaybill(request.order_no, request, issued, via=issued.provider))
        if DISPATCHER in app:
            app[DISPATCHER].notify()  # the label row is due now

    providers: dict[str, WaybillProvider] = app[WAYBILL_PROVIDERS] if WAYBILL_PROVIDERS in app else {}
    return {CHANNEL: WaybillSender(providers, bus.deps.waybill_provider, record)}
