"""The health dashboard: GET /dashboard (a page for phones, charts drawn by ECharts served from here) and
GET /api/v1/health (its figures as JSON).

A manager or supervisor opens it with the link `概况` sends (a signed token valid DASHBOARD__LINK_MINUTES);
the link is exchanged for a session cookie that lasts until midnight (China time), bound to that person, whose
account and role are checked again on every request. Machines read /api/v1/health with the API token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.dashboard_auth import LINK, SESSION, DashboardSigner, TokenRefused, link
from bot.jsonio import error, ok
from bot.keys import BUS, DB, SETTINGS
from config.settings import Settings
from domain import health as h
from domain.clock import local
from domain.order_lifecycle import ORDER_LIFECYCLE
from handlers.worklists import EXCEPTION_KINDS
from integrations.db.health_views import ConsistencyPoint, HealthFigures, HealthViews, RangeFigures
from integrations.db.uow import UnitOfWork

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

STATIC = Path(__file__).parent / "static"
FILES = {  # what the page loads, all from here (no CDN)
    "dashboard.js": "application/javascript",
    "dashboard.css": "text/css",
    "echarts.common.min.js": "application/javascript",
}
COOKIE = "orderbot_dashboard"
ROLES = ("manager", "supervisor")
CHANNELS = {"chat": "聊天消息", "wecom_chat": "企业微信", "dingtalk_chat": "钉钉", "wecom_group": "企业微信群",
            "sms": "短信", "erp": "ERP", "courier": "快递订阅", "k3": "金蝶K3记账", "print": "面单打印"}
PAGES = {
    "missing": (401, "请先登录", "请在企业微信（或钉钉）里向订单助手发送「概况」，点开回复中的看板链接。"),
    "expired": (401, "链接已过期", "看板链接只在发送后一段时间内有效。请重新发送「概况」获取新链接。"),
    "forged": (403, "链接无效", "这个看板链接不是订单助手发出的，或已被改动。请重新发送「概况」获取链接。"),
    "role": (403, "无权查看", "健康看板只对运营经理和主管开放。如需查看，请联系运营经理。"),
    "off": (403, "看板未启用", "管理员还没有设置看板密钥（ORDERBOT_DASHBOARD__SECRET）。"),
}


def signer(settings: Settings) -> DashboardSigner:
    return DashboardSigner(settings.dashboard.secret.get_secret_value().encode())


def link_maker(settings: Settings) -> Callable[[str, datetime], str] | None:
    """`概况` adds a signed link to the dashboard when its secret and public URL are set."""
    board = settings.dashboard
    if not (board.secret.get_secret_value() and board.public_url):
        return None
    sign = signer(settings)
    return lambda userid, now: link(sign, board.public_url, userid, now, board.link_minutes)


def _page(reason: str) -> web.Response:
    status, title, text = PAGES[reason]
    body = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head><body style=\"font-family:sans-serif;padding:24px;line-height:1.6\">"
        f"<h2>{escape(title)}</h2><p>{escape(text)}</p></body></html>"
    )
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


async def _viewer(request: web.Request, token: str, purpose: str) -> str:
    """The userid of a valid token whose account is active with a dashboard role; TokenRefused otherwise."""
    settings = request.app[SETTINGS]
    if not settings.dashboard.secret.get_secret_value():
        raise TokenRefused("off")
    userid = signer(settings).verify(purpose, token, request.app[BUS].deps.now)
    async with UnitOfWork(request.app[DB]) as uow:
        user = await uow.users.get(userid)
    if user is None or not user.active or not user.has(*ROLES):
        raise TokenRefused("role")
    return userid


@routes.get("/dashboard")
async def dashboard(request: web.Request) -> web.StreamResponse:
    token = request.query.get("t")
    if token is not None:
        return await _log_in(request, token)
    try:
        await _viewer(request, request.cookies.get(COOKIE, ""), SESSION)
    except TokenRefused as refused:
        why = "missing" if refused.why == "forged" and COOKIE not in request.cookies else refused.why
        log.info("dashboard: refused (%s) from %s", why, request.remote)
        return _page(why)
    return web.FileResponse(STATIC / "dashboard.html", headers={
        "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})


async def _log_in(request: web.Request, token: str) -> web.StreamResponse:
    """A link from `概况`: swapped for a session cookie until midnight, then the bare URL (no token in history)."""
    try:
        userid = await _viewer(request, token, LINK)
    except TokenRefused as refused:
        log.info("dashboard: link refused (%s) from %s", refused.why, request.remote)
        return _page(refused.why)
    settings, now = request.app[SETTINGS], request.app[BUS].deps.now
    until = h.end_of_day(now)
    response = web.Response(status=303, headers={"Location": "/dashboard"})
    response.set_cookie(COOKIE, signer(settings).sign(SESSION, userid, until), path="/",
                        max_age=max(1, int((until - now).total_seconds())), httponly=True, samesite="Lax",
                        secure=settings.dashboard.public_url.startswith("https://"))
    response.headers["Cache-Control"] = "no-store"
    log.info("dashboard: %s logged in until %s", userid, until.isoformat())
    return response


@routes.get("/dashboard/{name}")
async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in FILES:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers={"Content-Type": FILES[name], "Cache-Control": "max-age=3600"})


@routes.get("/api/v1/health")
async def health(request: web.Request) -> web.Response:
    """The API token (machines), or a dashboard session (the page's own refresh)."""
    settings = request.app[SETTINGS]
    bearer = f"Bearer {settings.api.token.get_secret_value()}".encode()
    given = request.headers.get("Authorization", "").encode("utf-8", "replace")
    if not hmac.compare_digest(given, bearer):
        try:
            await _viewer(request, request.cookies.get(COOKIE, ""), SESSION)
        except TokenRefused as refused:
            log.warning("health: refused (%s) from %s", refused.why, request.remote)
            if refused.why == "role":
                return error(403, "forbidden", "健康看板只对运营经理和主管开放。")
            return error(401, "unauthorized", "缺少或错误的 API 令牌，或看板登录已过期（请重新发送「概况」）。")
    now = request.app[BUS].deps.now
    async with request.app[DB].engine.connect() as conn:
        figures = await HealthViews(conn).figures(h.range_starts(now), now)
    return ok(health_json(figures, yellow_below=settings.consistency.threshold))


def health_json(f: HealthFigures, yellow_below: float = h.CONSISTENCY_YELLOW_BELOW) -> dict[str, Any]:
    """`yellow_below`: the line of `CONSISTENCY__THRESHOLD`, the same the consistency job warns at."""
    latest = f.consistency
    return {
        "generated_at": f.now,
        "local_time": local(f.now).strftime("%m-%d %H:%M"),
        "consistency": {
            "score": _round(latest.score) if latest else None,
            "window_end": latest.window_end if latest else None,
            "kind": latest.kind if latest else None,
            "yellow": h.is_yellow(latest.score if latest else None, yellow_below),
            "threshold": yellow_below,
        },
        "open_exceptions": _open_exceptions(f),
        "open_inquiries": f.open_inquiries,
        "ranges": {key: _range(figures, key, yellow_below) for key, figures in f.ranges.items()},
    }


def _range(r: RangeFigures, key: str, yellow_below: float) -> dict[str, Any]:
    states = list(ORDER_LIFECYCLE.states)
    lowest = min((p.score for p in r.consistency), default=None)
    return {
        "label": h.RANGE_LABELS.get(key, key),
        "processing": {
            "overall_s": _round(r.processing.overall_s),
            "shipped": r.processing.shipped,
            "by_state": [{"state": s.state, "label": ORDER_LIFECYCLE.label(s.state), "mean_s": _round(s.mean_s),
                          "stays": s.stays} for s in sorted(r.processing.by_state, key=lambda s: states.index(s.state))],
        },
        "anomalies": {"rate": _round(r.anomalies.rate, 2), "refused": r.anomalies.refused,
                      "forced": r.anomalies.forced, "attempts": r.anomalies.attempts},
        "first_contact": {"mean_s": _round(r.first_contact.mean_s), "median_s": _round(r.first_contact.median_s),
                          "answered": len(r.first_contact.durations_s)},
        "orders_by_state": [{"state": s, "label": ORDER_LIFECYCLE.label(s), "count": r.orders_by_state[s]}
                            for s in states if s in r.orders_by_state],
        "pushes": {
            "delivered": r.pushes.total("delivered"), "pending": r.pushes.total("pending"), "dead": r.pushes.total("dead"),
            "by_channel": [{"channel": ch, "label": CHANNELS.get(ch, ch), **{k: n.get(k, 0) for k in ("delivered", "pending", "dead")}}
                           for ch, n in sorted(r.pushes.by_channel.items())],
        },
        "consistency": {"lowest": _round(lowest, 2), "yellow": h.is_yellow(lowest, yellow_below),
                        "series": [_point(p, yellow_below) for p in r.consistency]},
    }


def _open_exceptions(f: HealthFigures) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    for row in f.open_incidents:
        ages = counts.setdefault(row.kind, {key: 0 for key, _, _ in h.AGE_BUCKETS})
        ages[h.age_bucket(row.opened_at, f.now)] += 1
    return {
        "total": len(f.open_incidents),
        "buckets": [{"key": key, "label": label} for key, label, _ in h.AGE_BUCKETS],
        "by_kind": [{"kind": kind, "label": EXCEPTION_KINDS.get(kind, kind), "count": sum(ages.values()), "ages": ages}
                    for kind, ages in sorted(counts.items(), key=lambda item: -sum(item[1].values()))],
    }


def _point(p: ConsistencyPoint, yellow_below: float) -> dict[str, Any]:
    return {"at": p.window_end, "label": local(p.window_end).strftime("%H:%M" if p.kind == "hour" else "%m-%d"),
            "score": _round(p.score, 2), "yellow": h.is_yellow(p.score, yellow_below)}


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)

