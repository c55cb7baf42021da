"""/metrics after real traffic, on SQLite and PostgreSQL: signed callbacks on every platform route and chat commands
through the whole app, then the exposition parsed with prometheus_client's own parser — latency histograms with
their counts, outbox/inbox/incident gauges equal to what the database holds, a job's last success after it ran,
and no label that names a person, an order or anything a sender typed. The Grafana dashboard in deploy/ asks only
for metrics that /metrics really exposes."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import SecretStr
from sqlalchemy import func, insert, select

from bot.app import create_app
from bot.keys import DB, METRICS
from bot.metrics_backlog import StoreGauges
from bot.scheduler import SCHEDULER
from config.settings import DouyinSettings, JobsSettings, LogisticsSettings, Settings
from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.fakes.dingtalk import FakeDingTalk
from integrations.fakes.douyin import FakeDouyin, push_element, signed_push, trade_data
from integrations.fakes.wecom import FakeWeCom
from integrations.logistics.kuaidi100_push import callback_sign
from tests.e2e.conftest import Chat
from tests.e2e.dingtalk_harness import Ding, staff_id, with_dingtalk

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "orderbot.json"
DOUYIN_KEY, DOUYIN_SECRET, SHOP = "7012345678901234567", "douyin-metrics-secret", "4463798"
SALT = "metrics-salt-0123"
PHONE = "13912345678"
ROUTES = ("wecom", "dingtalk", "kuaidi100", "douyin")


@dataclass
class Site:
    chat: Chat
    ding: Ding
    client: TestClient

    @property
    def app(self) -> Any:
        return self.client.server.app

    async def scrape(self) -> dict[str, list[Sample]]:
        """Samples by sample name, as Prometheus would read them."""
        resp = await self.client.get("/metrics")
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        by_name: dict[str, list[Sample]] = {}
        for family in text_string_to_metric_families(await resp.text()):
            by_name.setdefault(family.name, [])
            for sample in family.samples:
                by_name.setdefault(sample.name, []).append(sample)
        return by_name

    async def db_count(self, table: Any, *where: Any) -> int:
        async with self.app[DB].engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    found = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {found}; have {[s.labels for s in samples.get(name, [])]}"
    return found[0]


@pytest.fixture
async def site(aiohttp_client: Any, e2e_settings: Settings, fake_wecom: FakeWeCom,
               fake_dingtalk: FakeDingTalk) -> AsyncIterator[Site]:
    async with FakeDouyin(DOUYIN_KEY, DOUYIN_SECRET, SHOP) as douyin:
        settings = with_dingtalk(e2e_settings, fake_dingtalk).model_copy(update={
            "douyin": DouyinSettings(app_key=DOUYIN_KEY, app_secret=SecretStr(DOUYIN_SECRET), shop_id=SHOP,
                                     api_base=douyin.base_url, store="SH01", timeout_s=0.5),
            "logistics": LogisticsSettings(salt=SecretStr(SALT)),
            "jobs": JobsSettings(holder="metrics-replica", leader_retry_s=0.2),
        })
        client = await aiohttp_client(create_app(settings, deliver=False, schedule=True))
        site = Site(Chat(client, fake_wecom, settings), Ding(client, fake_dingtalk, settings), client)
        await site.ding.add_user("wh1", "王强", "warehouse", store="SH01")  # on WeCom and DingTalk
        douyin.add_order("6920000000000000001", phone=PHONE)
        yield site


async def drive(site: Site) -> str:
    """Callbacks on every platform route and a few chat commands; returns the order number used."""
    chat = site.chat
    order_no = await chat.order("DY-M1")
    assert await chat.say("wh1", f"查询 {order_no}") == 200
    assert await chat.say("wh1", f"拣货 {order_no}") == 200
    assert await chat.say("wh1", f"发货 {order_no} SF1234567890") == 200  # not packed yet: refused, answered
    assert await chat.say("stranger-7", "你好") == 200  # refused politely: still a command, timed
    assert await site.ding.say("wh1", "帮助") == 200
    headers, body = signed_push(DOUYIN_KEY, DOUYIN_SECRET, [
        push_element("100", "6920000000000000001:0:100:1", trade_data("100", "6920000000000000001", SHOP))])
    assert (await site.client.post("/channels/douyin/callback", data=body, headers=headers)).status == 200
    param = json.dumps({"status": "polling", "lastResult": {"state": "0", "nu": "SF000000001", "com": "shunfeng",
                                                            "data": [{"time": "2026-01-01 10:00:00", "context": "已揽收"}]}})
    pushed = await site.client.post("/channels/kuaidi100/callback", data={"param": param, "sign": callback_sign(param, SALT)})
    assert pushed.status == 200
    bad = await site.client.post("/channels/kuaidi100/callback", data={"param": param, "sign": "0" * 32})
    assert bad.status == 403
    await chat.settle()
    return order_no


async def test_callbacks_and_commands_show_as_histograms_with_counts(site: Site) -> None:
    await drive(site)
    m = await site.scrape()
    hist = "orderbot_callback_duration_seconds"
    assert value(m, f"{hist}_count", route="wecom", code="200") == 4
    assert value(m, f"{hist}_count", route="dingtalk", code="200") == 1
    assert value(m, f"{hist}_count", route="douyin", code="200") == 1
    assert value(m, f"{hist}_count", route="kuaidi100", code="200") == 1
    assert value(m, f"{hist}_count", route="kuaidi100", code="403") == 1
    assert value(m, f"{hist}_bucket", route="wecom", code="200", le="+Inf") == 4
    assert value(m, f"{hist}_sum", route="wecom", code="200") > 0
    assert not [s for s in m[f"{hist}_count"] if s.labels["route"] not in (*ROUTES, "dingtalk_card")]
    cmd = "orderbot_command_duration_seconds"
    assert value(m, f"{cmd}_count", command="status") == 1
    assert value(m, f"{cmd}_count", command="pick") == 1
    assert value(m, f"{cmd}_count", command="ship") == 1
    assert value(m, f"{cmd}_count", command="help") == 1  # from DingTalk
    assert value(m, f"{cmd}_count", command="apply_douyin_push") == 1
    assert sum(s.value for s in m[f"{cmd}_count"]) == 6  # status, pick, ship, the stranger's, help, the push
    assert value(m, "orderbot_transitions_total", entity="order", trigger="pick") == 1
    assert value(m, "orderbot_commands_refused_total", command="ship", code="illegal_transition") == 1
    assert value(m, "orderbot_state_jump_anomalies_total") == 1
    # every reply was handed to the fake platforms: sent, counted by channel
    sent = sum(s.value for s in m["orderbot_deliveries_total"] if s.labels["result"] == "sent")
    assert sent == await site.db_count(t.outbox, t.outbox.c.status == "delivered") > 0
    assert value(m, "orderbot_metrics_database_up") == 1


async def test_backlog_gauges_equal_what_the_database_holds(site: Site) -> None:
    await drive(site)
    now = utcnow()
    async with site.app[DB].engine.begin() as conn:  # a backlog as an outage leaves it: waiting, dead, parked
        await conn.execute(insert(t.outbox), [
            {"created_at": now - timedelta(seconds=age), "channel": "sms", "kind": "text", "recipient": PHONE,
             "payload": {}, "status": status, "attempts": 0, "next_attempt_at": now, "last_error": ""}
            for age, status in ((600, "pending"), (60, "pending"), (900, "dead"))
        ])
        await conn.execute(insert(t.inbound_messages), [
            {"platform": "wecom", "message_id": f"m-{i}", "received_at": now - timedelta(seconds=300),
             "payload": None, "attempts": 1, "parked_at": now if i else None, "last_error": "",
             "claimed_by": "another-replica", "claimed_until": now + timedelta(hours=1)} for i in range(3)
        ])
        await conn.execute(insert(t.exceptions), [
            {"kind": "address_change", "order_no": "SO-X", "severity": "critical", "message": "x",
             "opened_at": now - timedelta(seconds=120), "resolution": "", "resolved_at": resolved}
            for resolved in (None, now)
        ])
    m = await site.scrape()
    o = t.outbox.c
    async with site.app[DB].engine.connect() as conn:
        held = {(ch, st): n for ch, st, n in await conn.execute(
            select(o.channel, o.status, func.count()).where(o.status != "delivered").group_by(o.channel, o.status))}
    shown = {(s.labels["channel"], s.labels["status"]): s.value for s in m["orderbot_outbox_rows"]}
    assert {k: v for k, v in shown.items() if v} == held
    assert held[("sms", "pending")] == 2 and held[("sms", "dead")] == 1
    assert 600 <= value(m, "orderbot_outbox_oldest_pending_age_seconds", channel="sms") < 660
    assert value(m, "orderbot_outbox_rows", channel="wecom_chat", status="dead") == 0  # a sender here: shown at 0
    assert value(m, "orderbot_inbox_rows", platform="wecom", status="parked") == 2
    assert value(m, "orderbot_inbox_rows", platform="wecom", status="unprocessed") == 1
    assert value(m, "orderbot_inbox_oldest_unprocessed_age_seconds", platform="wecom") >= 300
    assert value(m, "orderbot_incidents_open", kind="address_change") == 1
    assert value(m, "orderbot_incidents_opened_total", kind="address_change") == 2
    assert value(m, "orderbot_incidents_oldest_open_age_seconds", kind="address_change") >= 120


async def test_scrapes_share_one_database_read_for_a_few_seconds(site: Site) -> None:
    store = site.app[METRICS].store
    clock = [1000.0]
    store.clock = lambda: clock[0]
    await asyncio.gather(*(site.scrape() for _ in range(5)))
    first = store.queries
    assert first == 1  # five scrapes at once: one query
    async with site.app[DB].engine.begin() as conn:
        await conn.execute(insert(t.exceptions).values(kind="stuck_order", severity="warning", message="x",
                                                       opened_at=utcnow(), resolution=""))
    cached = await site.scrape()
    assert "orderbot_incidents_open" not in cached or not cached["orderbot_incidents_open"]
    clock[0] += store.cache_s
    fresh = await site.scrape()
    assert store.queries == 2
    assert value(fresh, "orderbot_incidents_open", kind="stuck_order") == 1


async def test_a_job_that_ran_shows_its_last_success(site: Site) -> None:
    scheduler = site.app[SCHEDULER]
    for _ in range(100):  # the leader loop takes the jobs lock right after start-up
        if await scheduler.leader.holds():
            break
        await asyncio.sleep(0.05)
    before = await site.scrape()
    assert not before.get("orderbot_job_last_success_timestamp_seconds")  # no job ran yet
    assert value(before, "orderbot_job_interval_seconds", job_name="stuck_orders") > 0
    started = time.time()
    assert await scheduler.tick("stuck_orders")
    m = await site.scrape()
    ran_at = value(m, "orderbot_job_last_success_timestamp_seconds", job_name="stuck_orders")
    assert started <= ran_at <= time.time()
    assert value(m, "orderbot_job_runs_total", job_name="stuck_orders", result="ok") == 1
    assert [s.labels["job_name"] for s in m["orderbot_job_last_success_timestamp_seconds"]] == ["stuck_orders"]


async def test_no_label_names_a_person_an_order_or_what_was_typed(site: Site) -> None:
    order_no = await drive(site)
    resp = await site.client.get("/metrics")
    text = await resp.text()
    for personal in (order_no, "wh1", staff_id("wh1"), "stranger-7", "王强", PHONE, "6920000000000000001", "SF000000001",
                     "查询", "你好", site.chat.settings.api.token.get_secret_value(), SALT, DOUYIN_SECRET):
        assert personal not in text
    values = {v for family in text_string_to_metric_families(text) for s in family.samples for v in s.labels.values()}
    assert all(re.fullmatch(r"[A-Za-z0-9_.+\-]{1,40}", v) for v in values), values


async def test_a_database_out_of_reach_is_reported_not_raised(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/orderbot.db")
    store = StoreGauges()
    try:
        await store.refresh(db)
    finally:
        await db.dispose()
    [up] = [f for f in store.collect() if f.name == "orderbot_metrics_database_up"]
    assert up.samples[0].value == 0
    assert [f.name for f in store.collect()] == ["orderbot_metrics_database_up"]  # no stale backlog shown


def dashboard_exprs() -> list[str]:
    """Every query of the dashboard: the panels' and the template variables'."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    shown = [panel for panel in board["panels"] if panel["type"] != "row"]
    assert shown and all(panel.get("targets") for panel in shown)
    exprs = [target["expr"] for panel in shown for target in panel["targets"]]
    return exprs + [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]


async def test_every_grafana_query_names_a_metric_that_metrics_exposes(site: Site) -> None:
    await drive(site)
    assert await site.app[SCHEDULER].tick("stuck_orders", utcnow())
    async with site.app[DB].engine.begin() as conn:
        await conn.execute(insert(t.exceptions).values(kind="stuck_order", severity="warning", message="x",
                                                       opened_at=utcnow(), resolution=""))
    exposed = set(await site.scrape())
    for expr in dashboard_exprs():
        names = set(re.findall(r"\b((?:orderbot|process|python)_[a-z0-9_]+)\b", expr))
        assert names, expr
        assert names <= exposed, (expr, names - exposed)
