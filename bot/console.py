"""The demo's chat console: a browser page that plays WeCom users against the app's real callback edge.

Each message is signed and encrypted as WeCom would send it and POSTed over HTTP to this app's own
/wecom/callback, so the edge, inbox, bus, outbox and delivery all run; what the fake WeCom received is what
the page shows. Mounted only by `orderbot demo` (bot/demo.py), never by create_app.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, Field

from bot.jsonio import error, ok, parse_body
from bot.keys import DB, SETTINGS
from domain.users import ROLES
from integrations.db.uow import UnitOfWork
from integrations.fakes.wecom import FakeWeCom
from integrations.fakes.wecom_signer import card_click_xml, scan_xml, sign_callback, text_xml

PAGE = Path(__file__).parent / "static" / "console.html"
USERID = r"^[A-Za-z0-9_.@\-]{1,64}$"
ROLE_ORDER = list(ROLES)

routes = web.RouteTableDef()
JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Click:
    user: str
    task_id: str


@dataclass
class Console:
    fake: FakeWeCom
    store_names: dict[str, str]
    http: aiohttp.ClientSession | None = None
    clicks: dict[str, Click] = field(default_factory=dict)  # response_code -> the click that carried it
    _last_event_time: int = 0
    _msg_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(int(time.time() * 1000)))

    def msg_id(self) -> str:
        return str(next(self._msg_ids))

    def event_time(self) -> int:
        """WeCom events carry no MsgId: the edge de-duplicates them on sender + CreateTime + event, so two
        clicks within one second must not share a CreateTime."""
        self._last_event_time = max(int(time.time()), self._last_event_time + 1)
        return self._last_event_time

    def replaced(self) -> dict[tuple[str, str], str]:
        """(userid, task_id) -> the replace_name the app set on that user's card, matched by response_code."""
        found: dict[tuple[str, str], str] = {}
        for update in self.fake.card_updates:
            click = self.clicks.get(str(update.get("response_code", "")))
            if click is None:
                continue
            name = str((update.get("button") or {}).get("replace_name", ""))
            for userid in update.get("userids") or [click.user]:
                found[str(userid), click.task_id] = name
        return found


CONSOLE = web.AppKey("demo_console", Console)


def install(app: web.Application, fake: FakeWeCom, store_names: Mapping[str, str]) -> None:
    """Add the console to a demo app (before it starts)."""
    app[CONSOLE] = Console(fake, dict(store_names))
    app.cleanup_ctx.append(_http_ctx)
    app.add_routes(routes)


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        app[CONSOLE].http = http
        yield


class SayIn(BaseModel):
    user: str = Field(pattern=USERID)
    text: str = Field(min_length=1, max_length=2048)


class ClickIn(BaseModel):
    user: str = Field(pattern=USERID)
    key: str = Field(min_length=1, max_length=256)
    task_id: str = Field(min_length=1, max_length=128)


class ScanIn(BaseModel):
    user: str = Field(pattern=USERID)
    code: str = Field(min_length=1, max_length=128)


@routes.get("/demo")
async def to_console(request: web.Request) -> web.Response:
    raise web.HTTPFound("/demo/console")


@routes.get("/demo/console")
async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE, headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"})


@routes.get("/demo/api/users")
async def users(request: web.Request) -> web.Response:
    stores = request.app[CONSOLE].store_names
    async with UnitOfWork(request.app[DB]) as uow:
        found = await uow.users.list()
    found.sort(key=lambda u: (min((ROLE_ORDER.index(r) for r in u.roles if r in ROLES), default=99), u.userid))
    return ok({"users": [
        {
            "userid": u.userid, "name": u.name, "roles": sorted(u.roles),
            "role_names": [ROLES.get(r, r) for r in sorted(u.roles, key=ROLE_ORDER.index)],
            "store": u.store, "store_name": stores.get(u.store or "", ""),
        }
        for u in found
    ]})


@routes.post("/demo/api/say")
async def say(request: web.Request) -> web.Response:
    body = await parse_body(request, SayIn)
    console = request.app[CONSOLE]
    xml = text_xml(body.user, body.text, console.msg_id(), int(time.time()), corp_id=_corp(request))
    return await _deliver(request, xml)


@routes.post("/demo/api/click")
async def click(request: web.Request) -> web.Response:
    body = await parse_body(request, ClickIn)
    console = request.app[CONSOLE]
    code = console.fake.issue_response_code()
    console.clicks[code] = Click(body.user, body.task_id)
    xml = card_click_xml(body.user, body.key, body.task_id, code, console.event_time(), corp_id=_corp(request))
    return await _deliver(request, xml)


@routes.post("/demo/api/scan")
async def scan(request: web.Request) -> web.Response:
    body = await parse_body(request, ScanIn)
    console = request.app[CONSOLE]
    xml = scan_xml(body.user, f"CODE_128,{body.code.strip()}", console.event_time(), corp_id=_corp(request))
    return await _deliver(request, xml)


@routes.get("/demo/api/messages")
async def messages(request: web.Request) -> web.Response:
    """What the fake WeCom accepted for `user` after global index `after` (1-based), plus every card of theirs
    that was since replaced by a decision label, so the page can update cards it already shows."""
    user = request.query.get("user", "")
    try:
        after = int(request.query.get("after", "0") or 0)
    except ValueError:
        return error(400, "invalid_query", "after 必须是整数。")
    console = request.app[CONSOLE]
    replaced = console.replaced()
    items: list[JsonObject] = []
    updates: dict[str, str] = {}
    for index, message in enumerate(list(console.fake.messages), start=1):
        if user not in str(message.get("touser", "")).split("|"):
            continue
        item = _view(index, message)
        card = item.get("card")
        if card is not None:
            item["replaced"] = replaced.get((user, card["task_id"]))
            if item["replaced"] is not None:
                updates[str(index)] = item["replaced"]
        if index > after:
            items.append(item)
    return ok({"messages": items, "last": len(console.fake.messages), "card_updates": updates})


def _view(index: int, message: JsonObject) -> JsonObject:
    kind = str(message.get("msgtype", ""))
    body = message.get(kind)
    item: JsonObject = {"index": index, "msgtype": kind}
    if kind in ("text", "markdown") and isinstance(body, dict):
        item["content"] = str(body.get("content", ""))
    elif kind == "template_card" and isinstance(body, dict):
        title = body.get("main_title") or {}
        item["card"] = {
            "task_id": str(body.get("task_id", "")),
            "title": str(title.get("title", "")),
            "desc": str(title.get("desc", "") or body.get("sub_title_text", "")),
            "source": str((body.get("source") or {}).get("desc", "")),
            "highlight": "source" in body,
            "fields": [[str(f.get("keyname", "")), str(f.get("value", ""))]
                       for f in body.get("horizontal_content_list") or []],
            "buttons": [{"key": str(b.get("key", "")), "text": str(b.get("text", "")), "style": b.get("style", 1)}
                        for b in body.get("button_list") or []],
        }
    else:
        item["content"] = f"[{kind or '消息'}]"
    return item


def _corp(request: web.Request) -> str:
    return request.app[SETTINGS].wecom.corp_id


def _own_callback_url(request: web.Request) -> str:
    """This server's own address, from the socket that took the request (the browser's Host may be a proxy)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host, port = str(sockname[0]), int(sockname[1])
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/wecom/callback"
    return str(request.url.with_path("/wecom/callback").with_query(None))


async def _deliver(request: web.Request, xml: str) -> web.Response:
    """Sign as WeCom does and POST to /wecom/callback, exactly as the WeCom servers would."""
    wecom = request.app[SETTINGS].wecom
    query, body = sign_callback(wecom.token.get_secret_value(), wecom.aes_key.get_secret_value(), wecom.corp_id, xml, int(time.time()),
                                secrets.token_hex(8), agent_id=wecom.agent_id)
    http = request.app[CONSOLE].http
    assert http is not None, "the console's HTTP session starts with the app"
    try:
        async with http.post(_own_callback_url(request), params=query, data=body) as answer:
            status, text = answer.status, await answer.text()
    except aiohttp.ClientError as err:
        return error(502, "callback_failed", f"回调没有送达：{err}")
    if status != 200:
        return error(502, "callback_refused", f"回调被拒绝（HTTP {status}）：{text}")
    return ok({"ok": True})
