"""The mini-program over HTTP into the whole app, on SQLite and PostgreSQL, with the fake jscode2session: login with
a one-time code, our session token (expiry on an injected clock, tampering refused), the customer's orders across
channels, an order placed once however often it is sent, 改地址's path before and after shipping, an after-sale
request with photos, and nobody reaching another customer's orders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from bot.app import create_app
from bot.keys import BUS, DB
from config.settings import ApiSettings, MiniprogramSettings, Settings
from domain import commands as c
from integrations.db import tables as t
from integrations.fakes.wechat_mini import FakeWeChatMini
from tests.integration.helpers import drive, rows

APP_ID, SECRET, SESSION_SECRET, API_TOKEN = "wx5f0e1d2c3b4a5968", "mini-e2e-secret", "mini-session-e2e", "mini-api"
LOGIN, ORDERS = "/channels/miniprogram/login", "/channels/miniprogram/orders"


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


@dataclass
class App:
    client: TestClient
    fake: FakeWeChatMini
    clock: Clock

    @property
    def app(self) -> Any:
        return self.client.server.app

    async def login(self, openid: str, unionid: str = "") -> str:
        response = await self.client.post(LOGIN, json={"js_code": self.fake.issue_code(openid, unionid=unionid)})
        assert response.status == 200, await response.text()
        return str((await response.json())["token"])

    async def call(self, method: str, path: str, token: str | None, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        response = await self.client.request(method, path, json=body, headers=headers)
        return response.status, await response.json()

    async def place(self, token: str, external_id: str, **extra: Any) -> tuple[int, Any]:
        body = {"external_id": external_id, "address": "上海市浦东新区张杨路500号", "paid": True,
                "lines": [{"sku": "BP-001", "qty": 1, "unit_price": "199.00", "name": "刹车片"}], **extra}
        return await self.call("POST", ORDERS, token, body)


def mini_settings(db_url: str, fake: FakeWeChatMini, **extra: Any) -> Settings:
    cfg = {"app_id": APP_ID, "secret": SecretStr(SECRET), "api_base": fake.base_url, "timeout_s": 0.5,
           "session_secret": SecretStr(SESSION_SECRET), "session_ttl": 3600, "store": "SH01", **extra}
    return Settings(database_url=db_url, api=ApiSettings(token=SecretStr(API_TOKEN)),
                    miniprogram=MiniprogramSettings(**cfg))


@pytest.fixture
async def fake_wechat() -> AsyncIterator[FakeWeChatMini]:
    async with FakeWeChatMini(APP_ID, SECRET) as fake:
        yield fake


async def _app(aiohttp_client: Any, db_url: str, fake: FakeWeChatMini, **extra: Any) -> App:
    client = await aiohttp_client(create_app(mini_settings(db_url, fake, **extra), deliver=False))
    clock = Clock()
    client.server.app[BUS].deps.clock = clock
    await client.server.app[BUS].handle(c.SetStock("SH01", "BP-001", 50, by="api", via="api"))
    return App(client, fake, clock)


@pytest.fixture
async def mini(aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChatMini) -> App:
    return await _app(aiohttp_client, db_url, fake_wechat)


async def test_login_gives_our_token_and_a_customer_known_by_openid(mini: App) -> None:
    code = mini.fake.issue_code("o-alice", unionid="u-alice")
    response = await mini.client.post(LOGIN, json={"js_code": code})
    assert response.status == 200
    answer = await response.json()
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600
    assert "session_key" not in await response.text()
    assert mini.fake.calls[-1] == {"appid": APP_ID, "secret": SECRET, "js_code": code,
                                   "grant_type": "authorization_code"}
    keys = await rows(mini.app[DB], t.customer_keys)
    assert {(k["kind"], k["value"]) for k in keys} == {("openid", "o-alice"), ("unionid", "u-alice")}
    assert {k["customer_id"] for k in keys} == {answer["customer_id"]}
    again = await mini.login("o-alice")  # the same person again: the same customer, nothing new
    assert again and len(await rows(mini.app[DB], t.customers)) == 1


async def test_a_bad_or_used_code_is_401_and_stores_nothing(mini: App) -> None:
    status, answer = await mini.call("POST", LOGIN, None, {"js_code": "not-a-code-from-wx-login"})
    assert (status, answer["error"]) == (401, "invalid_code") and "重新登录" in answer["message"]
    code = mini.fake.issue_code("o-bob")
    assert (await mini.call("POST", LOGIN, None, {"js_code": code}))[0] == 200
    assert (await mini.call("POST", LOGIN, None, {"js_code": code}))[0] == 401  # codes are one-time
    status, answer = await mini.call("POST", LOGIN, None, {"js_code": "bad code!"})
    assert (status, answer["error"]) == (400, "invalid_body")
    status, answer = await mini.call("POST", LOGIN, None, {"js_code": "x", "session_key": "y"})
    assert status == 400
    assert len(await rows(mini.app[DB], t.customers)) == 1


async def test_wechat_busy_or_rate_limited_is_said_and_stores_nothing(mini: App) -> None:
    mini.fake.fail_next(errcode=45011)
    status, answer = await mini.call("POST", LOGIN, None, {"js_code": mini.fake.issue_code("o-carol")})
    assert (status, answer["error"]) == (429, "wechat_rate_limited") and "分钟" in answer["message"]
    mini.fake.fail_next(errcode=-1)
    status, answer = await mini.call("POST", LOGIN, None, {"js_code": mini.fake.issue_code("o-carol")})
    assert (status, answer["error"]) == (503, "wechat_unavailable")
    mini.fake.fail_next(status=502)
    assert (await mini.call("POST", LOGIN, None, {"js_code": mini.fake.issue_code("o-carol")}))[0] == 503
    assert await rows(mini.app[DB], t.customers) == []
    assert await mini.login("o-carol")


async def test_logins_per_ip_are_limited(aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChatMini) -> None:
    mini = await _app(aiohttp_client, db_url, fake_wechat, logins_per_minute=3)
    for _ in range(3):
        await mini.login("o-dave")
    status, answer = await mini.call("POST", LOGIN, None, {"js_code": fake_wechat.issue_code("o-dave")})
    assert (status, answer["error"]) == (429, "too_many_logins")
    assert fake_wechat.sessions_issued == 3  # WeChat was not asked
    mini.clock.at += timedelta(seconds=61)
    assert await mini.login("o-dave")


async def test_a_token_expires_and_a_changed_one_is_refused(mini: App) -> None:
    token = await mini.login("o-erin")
    assert (await mini.call("GET", ORDERS, token))[0] == 200
    payload, mac = token.split(".")
    flipped = payload[:5] + ("A" if payload[5] != "A" else "B") + payload[6:]
    for bad in (f"{flipped}.{mac}", f"{payload}.{mac[:-1]}", token + "x", "", "Bearer", f"{payload}."):
        status, answer = await mini.call("GET", ORDERS, bad)
        assert status == 401 and answer["error"] in ("invalid_token", "unauthorized"), bad
    assert (await mini.call("GET", ORDERS, None))[0] == 401
    mini.clock.at += timedelta(seconds=3599)
    assert (await mini.call("GET", ORDERS, token))[0] == 200
    mini.clock.at += timedelta(seconds=1)
    status, answer = await mini.call("GET", ORDERS, token)
    assert (status, answer["error"]) == (401, "session_expired") and answer["message"] == "登录已过期，请重新登录。"


async def test_orders_list_every_channel_of_the_same_customer(mini: App) -> None:
    token = await mini.login("o-frank")
    assert (await mini.place(token, "MP-1"))[0] == 201
    rest = {"channel": "douyin", "external_id": "DY-9", "customer": {"openid": "o-frank"}, "paid": False,
            "address": "上海市浦东新区张杨路501号", "lines": [{"sku": "BP-001", "qty": 2, "unit_price": "10.00"}]}
    response = await mini.client.post("/api/v1/orders", json=rest, headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status == 201
    other = {**rest, "external_id": "DY-10", "customer": {"openid": "o-someone-else"}}
    assert (await mini.client.post("/api/v1/orders", json=other,
                                   headers={"Authorization": f"Bearer {API_TOKEN}"})).status == 201
    status, answer = await mini.call("GET", ORDERS, token)
    assert status == 200 and answer["total"] == 2
    listed = {o["external_id"]: o for o in answer["orders"]}
    assert set(listed) == {"MP-1", "DY-9"}
    assert listed["DY-9"]["label"] == "待支付" and listed["DY-9"]["channel_label"] == "抖店"
    assert listed["MP-1"]["label"] == "已拆单" and listed["MP-1"]["channel"] == "miniprogram"
    status, page = await mini.call("GET", f"{ORDERS}?size=1&page=2", token)
    assert status == 200 and len(page["orders"]) == 1 and page["total"] == 2
    assert (await mini.call("GET", f"{ORDERS}?size=1000", token))[0] == 400


async def test_an_order_is_placed_once_however_often_it_is_sent(mini: App) -> None:
    token = await mini.login("o-grace")
    status, first = await mini.place(token, "MP-7")
    assert status == 201 and first["channel"] == "miniprogram" and first["label"] == "已拆单"
    status, again = await mini.place(token, "MP-7")
    assert status == 200 and again["order_no"] == first["order_no"]
    assert len(await rows(mini.app[DB], t.orders)) == 1
    created = await rows(mini.app[DB], t.audit_log, t.audit_log.c.entity_id == first["order_no"],
                         t.audit_log.c.action == "create")
    customer = (await rows(mini.app[DB], t.orders))[0]["customer_id"]
    assert [(r["actor"], r["via"]) for r in created] == [(customer, "miniprogram")]
    intruder = await mini.login("o-mallory")
    status, answer = await mini.place(intruder, "MP-7")  # another customer's external id: no peek at the order
    assert (status, answer["error"]) == (409, "external_id_taken") and first["order_no"] not in str(answer)
    status, answer = await mini.place(token, "MP-8", lines=[{"sku": "BP-001", "qty": 1.5, "unit_price": "1.00"}])
    assert status == 400 and answer["error"] == "invalid_body"
    status, answer = await mini.place(token, "MP-9", channel="douyin")
    assert status == 400
    assert len(await rows(mini.app[DB], t.orders)) == 1


async def test_address_change_takes_the_改地址_path_and_is_refused_after_shipping(mini: App) -> None:
    token = await mini.login("o-heidi")
    _, order = await mini.place(token, "MP-20")
    path = f"{ORDERS}/{order['order_no']}/address"
    status, changed = await mini.call("POST", path, token, {"address": "上海市浦东新区世纪大道100号"})
    assert status == 200 and changed["address"] == "上海市浦东新区世纪大道100号"
    trail = await rows(mini.app[DB], t.audit_log, t.audit_log.c.entity_id == order["order_no"],
                       t.audit_log.c.action == "change_address")
    customer = (await rows(mini.app[DB], t.orders))[0]["customer_id"]
    assert [(r["actor"], r["via"]) for r in trail] and all(
        (r["actor"], r["via"]) == (customer, "miniprogram") for r in trail)
    assert changed["address_change_pending"]  # allocated already: the warehouse relabels, as after 改地址 in chat
    await mini.app[BUS].handle(c.ConfirmRelabel(order["order_no"], "SF1234567890", by="wh1", via="wecom"))
    await drive(mini.app[BUS], order["order_no"], "pick", "check", "pack", "ship", waybill="SF1234567890")
    status, answer = await mini.call("POST", path, token, {"address": "上海市浦东新区世纪大道200号"})
    assert status == 409 and "已发货，不能改地址" in answer["message"] and "SF1234567890" in answer["message"]
    assert (await rows(mini.app[DB], t.orders))[0]["address"] == "上海市浦东新区世纪大道100号"
    status, answer = await mini.call("POST", path, token, {"address": "x"})
    assert status == 400


async def test_aftersale_request_with_photos(mini: App) -> None:
    token = await mini.login("o-ivan")
    _, order = await mini.place(token, "MP-30")
    path = f"{ORDERS}/{order['order_no']}/aftersale"
    photos = ["https://img.example.com/a.jpg", "https://img.example.com/b.jpg"]
    status, case = await mini.call("POST", path, token, {"kind": "return", "reason": "尺寸不对", "photos": photos})
    assert status == 201 and case["kind"] == "return" and case["amount"] == "199.00" and case["photos"] == photos
    opened = await rows(mini.app[DB], t.audit_log, t.audit_log.c.entity == "aftersale", t.audit_log.c.action == "open")
    customer = (await rows(mini.app[DB], t.orders))[0]["customer_id"]
    assert [(r["actor"], r["via"], r["detail"]["photos"]) for r in opened] == [(customer, "miniprogram", photos)]
    for bad in ({"kind": "return", "reason": "x", "photos": ["http://img.example.com/a.jpg"]},
                {"kind": "return", "reason": "x", "photos": ["https://e.com/" + "a" * 500]},
                {"kind": "return", "reason": "x", "photos": [f"https://e.com/{i}.jpg" for i in range(10)]},
                {"kind": "return", "reason": "  "}, {"kind": "exchange", "reason": "x"}):
        status, answer = await mini.call("POST", path, token, bad)
        assert status == 400 and answer["message"], bad
    status, answer = await mini.call("POST", path, token, {"kind": "refund", "reason": "不想要了"})
    assert status == 400 and "可退金额" in answer["message"]  # the whole order is claimed already
    assert len(await rows(mini.app[DB], t.aftersales)) == 1


async def test_someone_elses_order_is_not_found(mini: App) -> None:
    owner = await mini.login("o-judy")
    _, order = await mini.place(owner, "MP-40")
    other = await mini.login("o-ken")
    base = f"{ORDERS}/{order['order_no']}"
    status, answer = await mini.call("POST", f"{base}/address", other, {"address": "上海市浦东新区世纪大道9号"})
    assert (status, answer["error"]) == (404, "not_found")
    status, missing = await mini.call("POST", f"{ORDERS}/OB99999999/address", other, {"address": "上海市世纪大道9号"})
    assert status == 404 and missing["error"] == answer["error"]
    status, _ = await mini.call("POST", f"{base}/aftersale", other, {"kind": "refund", "reason": "x"})
    assert status == 404
    _, listed = await mini.call("GET", ORDERS, other)
    assert listed["total"] == 0
    assert (await rows(mini.app[DB], t.orders))[0]["address"] == "上海市浦东新区张杨路500号"
    assert await rows(mini.app[DB], t.aftersales) == []


async def test_channel_not_configured_is_404(aiohttp_client: Any, db_url: str) -> None:
    client = await aiohttp_client(create_app(Settings(database_url=db_url), deliver=False))
    response = await client.post(LOGIN, json={"js_code": "abc"})
    assert response.status == 404 and (await response.json())["error"] == "not_configured"


async def test_a_phone_given_in_the_app_links_the_customers_orders_elsewhere(mini: App) -> None:
    token = await mini.login("o-liam")
    rest = {"channel": "douyin", "external_id": "DY-77", "customer": {"phone": "138 0013 8000", "name": "李四"},
            "paid": False, "address": "上海市浦东新区张杨路501号", "lines": [{"sku": "BP-001", "qty": 1, "unit_price": "10.00"}]}
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    assert (await mini.client.post("/api/v1/orders", json=rest, headers=headers)).status == 201
    assert (await mini.call("GET", ORDERS, token))[1]["total"] == 0  # nothing links them yet
    assert (await mini.place(token, "MP-77", phone="13800138000", name="李四"))[0] == 201
    _, answer = await mini.call("GET", ORDERS, token)
    assert {o["external_id"] for o in answer["orders"]} == {"MP-77", "DY-77"}
    merged = await rows(mini.app[DB], t.audit_log, t.audit_log.c.entity == "customer")
    assert merged  # the merge is on the trail
