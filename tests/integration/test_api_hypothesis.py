"""Hypothesis over the REST API on PostgreSQL (it enforces column lengths and rejects NUL; SQLite does neither):
hostile bodies, raw bytes and path parameters never get a 5xx or an ERROR log line, a refused request stores
nothing (the audit trail may only gain "refused" rows), and a request without the token never reaches the database.

Every request goes out as raw bytes (api_hostile.raw_request), so paths and headers reach the server exactly as drawn.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import create_app
from bot.keys import BUS, DB
from config.settings import ApiSettings, Settings
from domain import commands as c
from tests.conftest import _truncate_pg
from tests.integration.api_hostile import counts, raw_request, statements
from tests.integration.helpers import create_cmd
from tests.integration.test_api import TOKEN, add_store

pytestmark = pytest.mark.postgres

# Bounded so that the four properties together add seconds, not minutes, to `make test`.
BOUNDED = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

ORDER_NO, AFTERSALE_NO = "OB00000001", "AS000001"  # the first of each in a fresh database
VALID = {"order": ORDER_NO, "aftersale": AFTERSALE_NO, "store": "SH01", "sku": "BP-001"}
LINE = {"sku": "BP-001", "qty": 1, "unit_price": "199.00", "name": "刹车片"}
ROUTES: list[tuple[str, str, tuple[str, ...], dict[str, Any] | None]] = [
    ("POST", "/api/v1/orders", (), {"channel": "douyin", "external_id": "DY1", "customer": {"id": "C1", "name": "浦东店",
     "phone": "13800000000"}, "address": "上海市浦东新区张杨路500号", "store": "SH01", "paid": True, "lines": [LINE]}),
    ("GET", "/api/v1/orders/{}", ("order",), None),
    ("POST", "/api/v1/orders/{}/address", ("order",), {"address": "上海市徐汇区漕溪北路1号", "by": "customer"}),
    ("POST", "/api/v1/orders/{}/trigger", ("order",), {"trigger": "pick", "waybill": "SF1", "reason": "", "by": "api"}),
    ("POST", "/api/v1/aftersales", (), {"order_no": ORDER_NO, "kind": "refund", "amount": "1.00", "reason": "破损"}),
    ("GET", "/api/v1/aftersales/{}", ("aftersale",), None),
    ("GET", "/api/v1/inventory/{}/{}", ("store", "sku"), None),
    ("PUT", "/api/v1/inventory/{}/{}", ("store", "sku"), {"on_hand": 50}),
    ("POST", "/api/v1/demand-signals", (), {"sku": "BP-001", "channel": "douyin", "kind": "cart_add", "value": 3}),
    ("PUT", "/api/v1/skus/{}", ("sku",), {"name": "刹车片", "replenish_threshold": 60, "lead_time_days": 2}),
    ("POST", "/api/v1/skus/{}/unfreeze", ("sku",), {"by": "cg1", "channels": ["k3"]}),
]

SPECIAL = ["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "../etc", "..", "%00", "SH01/..", "\n", "\r\nX: y",
           "' OR 1=1 --", "null", "0" * 30, "١٢", "Ｓ", "\u202e", "A" * 65, "字" * 129, "路" * 501]
TEXT = st.one_of(
    st.text(max_size=24),
    st.text(st.characters(categories=["Cs", "Cc", "Cf"]), min_size=1, max_size=4),
    st.sampled_from(SPECIAL),
    st.builds(lambda ch, n: ch * n, st.sampled_from(["A", "字", "\x00"]), st.integers(0, 700)),
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
BYTES_SEGMENT = st.binary(max_size=40).map(lambda b: quote(b, safe=""))
SEGMENT = st.one_of(
    BYTES_SEGMENT,
    TEXT.map(lambda s: quote(s.encode("utf-8", "surrogatepass"), safe="/.")),
    st.sampled_from(["..", "%2E%2E", "..%2Fetc", "%00", "SH01%00", "A" * 65, "%C3%28", "%FF%FE"]),
)
MEDIA = st.sampled_from(["application/json"] * 6 + ["application/json; charset=UTF-8", "application/json; charset=klingon",
                        "application/json; charset=latin-1", "text/plain", "application/x-www-form-urlencoded", ""])
HEADER_BYTES = st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b)


@dataclass
class Api:
    loop: asyncio.AbstractEventLoop
    server: TestServer
    errors: list[str] = field(default_factory=list)

    def send(self, method: str, path: str, body: bytes = b"", media: str = "application/json",
             auth: bytes | None = b"Bearer " + TOKEN.encode()) -> tuple[int, bytes, dict[str, int], dict[str, int], list[str]]:
        """One request as raw bytes; returns status, body, stored counts before and after, statements run."""
        head = f"{method} {path} HTTP/1.1\r\nHost: api".encode()
        head += f"\r\nContent-Type: {media}".encode() if media else b""
        head += b"\r\nAuthorization: " + auth if auth is not None else b""
        db = self.server.app[DB]

        async def go() -> tuple[int, bytes, dict[str, int], dict[str, int], list[str]]:
            before = await counts(db)
            with statements(db) as seen:
                status, answer = await raw_request(str(self.server.host), int(self.server.port or 0), head, body)
            return status, answer, before, await counts(db), list(seen)

        return self.loop.run_until_complete(go())


class _Errors(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and isinstance(record.exc_info[1], BadHttpMessage):
            return  # aiohttp's own parser refusing bytes no HTTP client sends (400 before any route; see the report)
        self.into.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(scope="module")
def api(pg_url: str) -> Iterator[Api]:
    """One app on a fresh PostgreSQL for the whole module: a store, stock, an order and an after-sale to aim at."""
    asyncio.run(_truncate_pg(pg_url))
    loop = asyncio.new_event_loop()
    server = TestServer(create_app(Settings(database_url=pg_url, api=ApiSettings(token=TOKEN)), deliver=False))

    async def start() -> None:
        await server.start_server()
        app = server.app
        await add_store(app, "SH01")
        await app[BUS].handle(c.SetStock("SH01", "BP-001", 1_000, by="api", via="api"))
        order, _ = await app[BUS].handle(create_cmd())
        aftersale = await app[BUS].handle(c.OpenAfterSale(order.order_no, "refund", "破损", 100, by="api", via="api"))
        assert (order.order_no, aftersale.aftersale_no) == (ORDER_NO, AFTERSALE_NO)

    loop.run_until_complete(start())
    api = Api(loop, server)
    handler = _Errors(api.errors)
    logging.getLogger().addHandler(handler)
    yield api
    logging.getLogger().removeHandler(handler)
    loop.run_until_complete(server.close())
    loop.close()


def path_for(template: str, params: tuple[str, ...], values: dict[str, str]) -> str:
    return template.format(*(values.get(p, VALID[p]) for p in params))


def assert_handled(api: Api, status: int, answer: bytes, before: dict[str, int], after: dict[str, int]) -> None:
    assert status < 500, answer[:300]
    if status >= 400:
        assert after == before, f"refused with {status} but stored: {answer[:200]!r}"
    assert api.errors == []


@BOUNDED
@given(st.data())
def test_hostile_bodies_get_a_4xx_and_store_nothing(api: Api, data: st.DataObject) -> None:
    method, template, params, valid = data.draw(st.sampled_from([r for r in ROUTES if r[3] is not None]))
    assert valid is not None
    body = copy.deepcopy(valid)
    for _ in range(data.draw(st.integers(1, 3))):
        holders = [body, *(v for v in body.values() if isinstance(v, dict)),
                   *(x for v in body.values() if isinstance(v, list) for x in v if isinstance(x, dict))]
        holder = data.draw(st.sampled_from(holders))
        action = data.draw(st.sampled_from(["set", "set", "drop", "extra"]))
        if action == "extra" or not holder:
            holder[data.draw(TEXT)] = data.draw(JSON_VALUE)
        elif action == "set":
            holder[data.draw(st.sampled_from(sorted(holder)))] = data.draw(JSON_VALUE)
        else:
            del holder[data.draw(st.sampled_from(sorted(holder)))]
    raw = json.dumps(body).encode()
    status, answer, before, after, _ = api.send(method, path_for(template, params, {}), raw, data.draw(MEDIA))
    assert_handled(api, status, answer, before, after)


@BOUNDED
@given(st.sampled_from(ROUTES), st.binary(max_size=300), MEDIA)
def test_raw_bytes_as_a_body_get_a_4xx_and_store_nothing(
    api: Api, route: tuple[str, str, tuple[str, ...], Any], raw: bytes, media: str
) -> None:
    method, template, params, _ = route
    status, answer, before, after, _ = api.send(method, path_for(template, params, {}), raw, media)
    assert_handled(api, status, answer, before, after)


@BOUNDED
@given(st.sampled_from([r for r in ROUTES if r[2]]), st.dictionaries(st.sampled_from(list(VALID)), SEGMENT))
def test_hostile_path_parameters_get_a_4xx_and_store_nothing(
    api: Api, route: tuple[str, str, tuple[str, ...], Any], values: dict[str, str]
) -> None:
    method, template, params, valid = route
    raw = json.dumps(valid).encode() if valid is not None else b""
    status, answer, before, after, _ = api.send(method, path_for(template, params, values), raw)
    assert_handled(api, status, answer, before, after)


@BOUNDED
@given(
    st.sampled_from(ROUTES),
    st.dictionaries(st.sampled_from(list(VALID)), SEGMENT),
    st.one_of(st.none(), HEADER_BYTES, HEADER_BYTES.map(lambda b: b"Bearer " + b),
              st.sampled_from([b"Bearer", b"bearer " + TOKEN.encode(), TOKEN.encode(), b"Bearer " + TOKEN.encode()[:-1],
                               b"Basic dDBrOg==", b"Bearer \xff" + TOKEN.encode()])),
    st.binary(max_size=100),
)
def test_without_the_token_nothing_reaches_the_database(
    api: Api, route: tuple[str, str, tuple[str, ...], Any], values: dict[str, str], auth: bytes | None, raw: bytes
) -> None:
    if auth is not None and auth.strip(b" \t") == b"Bearer " + TOKEN.encode():
        auth = b"Bearer not-" + TOKEN.encode()  # the one value that is the token
    method, template, params, _ = route
    status, answer, before, after, seen = api.send(method, path_for(template, params, values), raw, auth=auth)
    assert 400 <= status < 500, answer[:300]
    assert seen == [], f"an unauthenticated {status} ran SQL"
    assert after == before
    assert api.errors == []
