"""Customer texts (Aliyun SMS) wired into the app: the client when SMS__ settings are complete, the outbox
sender for channel "sms" either way (unconfigured rows are set aside and counted, never left pending), the task
for customer service when a text dies, and the REST route that stops or resumes a customer's texts."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
from aiohttp import web
from pydantic import Field

from bot.api_bodies import API_ACTOR, Actor, Body
from bot.jsonio import ok, parse_body, path_value
from bot.keys import BUS, DB, SETTINGS
from config.settings import SmsSettings
from domain import limits as lim
from domain.clock import utcnow
from domain.commands import SetSmsOptOut
from domain.outbox import SMS_ADDRESS_CHANGED, SMS_REFUND, SMS_SHIPPED
from domain.quiet_hours import QuietHours
from integrations.delivery.dispatcher import Sender
from integrations.sms.aliyun import AliyunSmsClient, AliyunSmsSender, UnconfiguredSms
from integrations.sms.dead import SmsDeadRows
from integrations.sms.outbox import CHANNEL, revive_unconfigured
from integrations.sms.templates import SmsTemplates

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
SMS_CLIENT = web.AppKey("sms_client", AliyunSmsClient)
SMS_DEAD = web.AppKey("sms_dead", SmsDeadRows)


def templates_of(settings: SmsSettings) -> SmsTemplates:
    codes = {SMS_SHIPPED: settings.shipped_template, SMS_ADDRESS_CHANGED: settings.address_changed_template,
             SMS_REFUND: settings.refund_template}
    return SmsTemplates({kind: code for kind, code in codes.items() if code})


async def sms_ctx(app: web.Application) -> AsyncIterator[None]:
    """The SendSms client's connection pool; rows set aside while SMS was not configured are due again now."""
    cfg, db = app[SETTINGS].sms, app[DB]
    app[SMS_DEAD] = SmsDeadRows(db)
    if not cfg.configured:
        log.warning("sms is not configured (SMS__ACCESS_KEY_ID, ACCESS_KEY_SECRET, SIGN_NAME): customer texts are "
                    "set aside as unconfigured, see orderbot_outbox_rows on /metrics")
        yield
        return
    await revive_unconfigured(db, utcnow(), cfg.drain_max_age_hours)
    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout_s)) as http:
        app[SMS_CLIENT] = AliyunSmsClient(
            http, api_base=cfg.api_base, access_key_id=cfg.access_key_id,
            access_key_secret=cfg.access_key_secret.get_secret_value(), sign_name=cfg.sign_name,
        )
        yield


def sms_senders(app: web.Application) -> dict[str, Sender]:
    client = app.get(SMS_CLIENT)
    if client is None:
        return {CHANNEL: UnconfiguredSms()}
    cfg = app[SETTINGS].sms
    quiet = QuietHours.of(cfg.quiet_start, cfg.quiet_end)
    return {CHANNEL: AliyunSmsSender(client, app[DB], templates_of(cfg), quiet=quiet)}


class SmsSwitchIn(Body):
    opt_out: bool
    by: Actor = Field(default=API_ACTOR, min_length=1)


@routes.put("/api/v1/customers/{customer_id}/sms")
async def put_customer_sms(request: web.Request) -> web.Response:
    """{"opt_out": true} stops a customer's texts (those already waiting too); false resumes them."""
    customer_id = path_value(request, "customer_id", lim.CUSTOMER_REF)
    body = await parse_body(request, SmsSwitchIn)
    customer = await request.app[BUS].handle(SetSmsOptOut(customer_id, body.opt_out, by=body.by, via="api"))
    return ok({"customer_id": customer.customer_id, "sms_opt_out": customer.sms_opt_out})
