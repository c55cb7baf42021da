"""The case's peak day replayed against `orderbot serve`: orders arrive through the channels over a compressed day,
each is driven through its lifecycle by signed WeCom chat commands and scans, with the case's exceptions.

`orderbot serve` runs as its own process on a fresh database (PostgreSQL by default, dropped after), configured
through ORDERBOT_ variables as an operator would; the fake WeCom, Douyin gateway and courier run in this process.
Orders arrive by the hour's weight of a peak day squeezed into `--day-s` seconds: signed Douyin pushes (the fake
gateway answers order.orderDetail) and POST /api/v1/orders. Each store's warehouse hands work one order at a time:
拣货 (a scancode_waitmsg scan and a tap on the card's button, or typed), 质检, 打包 with the waybill, 发货 — each a
signed, encrypted WeCom callback; a chat step is timed from the callback to the new state being visible in the
database. Exceptions: address changes mid-picking (POST /api/v1/orders/{no}/address; the hand waits for the relabel
card, then 确认改签), couriers reporting a packed parcel signed (a signed Kuaidi100 push; the parcel is then left for
a person), a surge on one SKU beyond its stock, refunds (after-sales; the larger ones approved by a supervisor's
同意). A share of shipped orders is reported signed by the courier and settled by finance (trigger `complete`).

    .venv/bin/python benchmarks/peak_day.py --orders 2000 --max-seconds 600
    .venv/bin/python benchmarks/peak_day.py --db sqlite --orders 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
import httpx  # noqa: E402

from benchmarks._support import database  # noqa: E402
from benchmarks.peak_outcomes import Tally, report  # noqa: E402
from benchmarks.peak_plan import (  # noqa: E402
    AUTO_REFUND_YUAN,
    BIG_REFUND_YUAN,
    UNIT_YUAN,
    Planned,
    crowd_skus,
    plan,
    seed,
)
from benchmarks.peak_support import (  # noqa: E402
    AES_KEY,
    API_TOKEN,
    CORP_ID,
    TOKEN,
    WECOM_SECRET,
    BacklogSampler,
    Chat,
    PgWaits,
    RecordingWeCom,
    StateWatcher,
    free_port,
    peak_rss_mib,
    scrape,
    start_serve,
)
from bot.demo_data import SKUS, USERS  # noqa: E402
from domain.clock import utcnow  # noqa: E402
from integrations.db.engine import Database  # noqa: E402
from integrations.fakes.courier import FakeCourier  # noqa: E402
from integrations.fakes.douyin import FakeDouyin, push_element, signed_push, trade_data  # noqa: E402
from integrations.fakes.wecom_signer import DEFAULT_AGENT_ID  # noqa: E402

DOUYIN_KEY, DOUYIN_SECRET, SHOP = "7012345678901234567", "bench-douyin-secret", "4463798"
COURIER_CUSTOMER, COURIER_KEY, SALT = "bench-courier", "bench-courier-key", "bench-kuaidi100-salt"
DASHBOARD_SECRET = "bench-dashboard-secret-0123456789"
CRUISING = frozenset({"split", "picking", "quality_check", "packed", "shipped", "in_transit", "delivered"})
STEPS = (("拣货", "pick", "picking"), ("质检", "check", "quality_check"), ("打包", "pack", "packed"),
         ("发货", "ship", "shipped"))


def server_env(db_url: str, port: int, wecom: str, douyin: str, courier: str) -> dict[str, str]:
    base = f"http://127.0.0.1:{port}"
    return {
        "ORDERBOT_DATABASE_URL": db_url, "ORDERBOT_HTTP__HOST": "127.0.0.1", "ORDERBOT_HTTP__PORT": str(port),
        "ORDERBOT_API__TOKEN": API_TOKEN, "ORDERBOT_LOG_LEVEL": "WARNING",
        "ORDERBOT_WECOM__CORP_ID": CORP_ID, "ORDERBOT_WECOM__AGENT_ID": str(DEFAULT_AGENT_ID),
        "ORDERBOT_WECOM__SECRET": WECOM_SECRET, "ORDERBOT_WECOM__TOKEN": TOKEN, "ORDERBOT_WECOM__AES_KEY": AES_KEY,
        "ORDERBOT_WECOM__API_BASE": wecom,
        "ORDERBOT_DOUYIN__APP_KEY": DOUYIN_KEY, "ORDERBOT_DOUYIN__APP_SECRET": DOUYIN_SECRET,
        "ORDERBOT_DOUYIN__SHOP_ID": SHOP, "ORDERBOT_DOUYIN__API_BASE": douyin,
        "ORDERBOT_LOGISTICS__API_BASE": courier, "ORDERBOT_LOGISTICS__CUSTOMER": COURIER_CUSTOMER,
        "ORDERBOT_LOGISTICS__KEY": COURIER_KEY, "ORDERBOT_LOGISTICS__SALT": SALT,
        "ORDERBOT_LOGISTICS__CALLBACK_URL": f"{base}/channels/kuaidi100/callback",
        "ORDERBOT_JOBS__LOGISTICS_SWEEP_MINUTES": "0.03",  # every 1.8 s: the compressed day's hourly-ish sweep
        "ORDERBOT_DASHBOARD__SECRET": DASHBOARD_SECRET, "ORDERBOT_DASHBOARD__PUBLIC_URL": base,
    }


class Day:
    """One replay: the fakes, the chat, the watcher and what was measured."""

    def __init__(self, args: argparse.Namespace, base: str, http: aiohttp.ClientSession, courier_http: httpx.AsyncClient,
                 wecom: RecordingWeCom, douyin: FakeDouyin, courier: FakeCourier, watcher: StateWatcher) -> None:
        self.args, self.base, self.http, self.courier_http = args, base, http, courier_http
        self.wecom, self.douyin, self.courier, self.watch = wecom, douyin, courier, watcher
        self.chat = Chat(http, base, wecom)
        self.hands = {u.userid: asyncio.Semaphore(1) for u in USERS if "warehouse" in u.roles}
        self.supervisors = [u.userid for u in USERS if "supervisor" in u.roles]
        self.tally = Tally()
        self.numbers: dict[str, str] = {}  # external id -> order number, once allocated
        self.t0 = 0.0
        self.auth = {"Authorization": f"Bearer {API_TOKEN}"}

    def over(self) -> bool:
        return time.monotonic() - self.t0 > self.args.max_seconds

    async def run_order(self, o: Planned) -> None:
        await asyncio.sleep(max(0.0, self.t0 + o.at_s - time.monotonic()))
        if self.over():
            self.tally.not_started += 1
            return
        try:
            await self._order(o)
        except TimeoutError as err:
            self.tally.failed.append(f"{o.external_id}: {err}; the hand's last message: {self.last_seen(o)}")
        except Exception as err:  # noqa: BLE001 - one order's trouble is counted, not the replay's end
            self.tally.failed.append(f"{o.external_id}: {type(err).__name__} {err}")
        self.tally.finished_at = time.monotonic()

    async def _order(self, o: Planned) -> None:
        sent = await self.arrive(o)
        wait = self.args.step_timeout_s
        no, state, seen = await self.watch.wait(o.external_id, CRUISING | {"paid"}, wait)
        self.numbers[o.external_id] = no
        if state == "paid":  # created paid and allocated in one unit of work: still paid is out of stock
            self.tally.exception("surge", no, sent, self.supervisors, "缺货")
            self.tally.seen_out_of_stock[no] = seen
            self.tally.out_of_stock.add(o.external_id)
            return
        self.tally.arrivals.append(seen - sent)
        async with self.hands[o.worker]:
            if self.over():
                self.tally.cut += 1  # arrived, but the replay's time ran out before its hand got to it
                return
            for zh, trigger, state in STEPS:
                if trigger == "ship" and o.exception == "courier":
                    await self.courier_signed_early(o, no)
                    return
                await self.step(o, no, zh, trigger, state)
                if trigger == "pick" and o.exception == "address":
                    await self.address_change(o, no)
        self.tally.shipped_by_us[no] = o
        if o.exception == "refund":
            await self.refund(o, no)
        elif o.deliver:
            await self.deliver_and_settle(o, no)

    def last_seen(self, o: Planned) -> str:
        """What the hand last saw about the order at the fake WeCom (a refusal says why a step did not happen)."""
        no = self.numbers.get(o.external_id, o.external_id)
        for payload in reversed(self.wecom.messages):
            blob = json.dumps(payload, ensure_ascii=False)
            if payload.get("touser") == o.worker and no in blob:
                return blob[:300]
        return "nothing"

    async def arrive(self, o: Planned) -> float:
        if o.channel == "douyin":
            self.douyin.add_order(o.external_id, sku=o.sku, qty=1, price_fen=UNIT_YUAN * 100, phone=o.phone,
                                  detail=f"张杨路{100 + o.i % 800}号")
            headers, body = signed_push(DOUYIN_KEY, DOUYIN_SECRET, [
                push_element("101", f"{o.external_id}:0:101:1", trade_data("101", o.external_id, SHOP))])
            sent = time.monotonic()
            async with self.http.post(f"{self.base}/channels/douyin/callback", data=body, headers=headers) as answer:
                assert answer.status == 200, await answer.text()
            return sent
        sent = time.monotonic()
        async with self.http.post(f"{self.base}/api/v1/orders", headers=self.auth, json={
            "channel": "api", "external_id": o.external_id, "paid": True, "store": o.store,
            "customer": {"phone": o.phone, "name": "门店客户"}, "address": f"上海市浦东新区张杨路{100 + o.i % 800}号",
            "lines": [{"sku": o.sku, "qty": 1, "unit_price": UNIT_YUAN, "name": SKUS[o.sku][0]}],
        }) as answer:
            assert answer.status in (200, 201), await answer.text()
        return sent

    async def step(self, o: Planned, no: str, zh: str, trigger: str, state: str) -> None:
        if trigger == "pick" and o.by_scan:
            await self.chat.scan(o.worker, no)
            sent = await self.chat.click(o.worker, f"pick {no}", f"scan-{no}")
        else:
            waybill = f" {o.new_waybill if o.exception == 'address' else o.waybill}" if trigger == "pack" else ""
            sent = await self.chat.text(o.worker, f"{zh} {no}{waybill}")
        _, _, seen = await self.watch.wait(no, frozenset({state}), self.args.step_timeout_s)
        self.tally.chat_steps.append(seen - sent)

    async def address_change(self, o: Planned, no: str) -> None:
        """The customer changes the address while the order is picked; the hand relabels once the card arrives."""
        seen = self.wecom.watchers.setdefault(no, asyncio.Event())
        sent = time.monotonic()
        async with self.http.post(f"{self.base}/api/v1/orders/{no}/address", headers=self.auth,
                                  json={"address": o.new_address, "by": "customer"}) as answer:
            assert answer.status == 200, await answer.text()
        staff = [u.userid for u in USERS if "warehouse" in u.roles and u.store == o.store]
        self.tally.exception("address", no, sent, staff, "改地址")
        try:
            await asyncio.wait_for(seen.wait(), self.args.card_wait_s)
        except TimeoutError:
            self.tally.cards_not_seen += 1  # the hand would find it under 待办; relabel anyway
        await self.chat.text(o.worker, f"确认改签 {no} {o.new_waybill}")

    async def courier_signed_early(self, o: Planned, no: str) -> None:
        """The courier reports the packed parcel signed before it was scanned out: the hand leaves it for a person."""
        now = utcnow()
        sent = time.monotonic()
        answer = await self.courier.push(o.waybill, "3", [(now - timedelta(minutes=20), "快件已揽收"),
                                                         (now, "已签收，签收人：前台代收")],
                                         callback_url=f"{self.base}/channels/kuaidi100/callback", salt=SALT,
                                         http=self.courier_http)
        assert answer.status_code == 200, answer.text
        self.tally.exception("courier", no, sent, self.supervisors, "物流冲突")
        self.tally.held_back.add(no)

    async def refund(self, o: Planned, no: str) -> None:
        amount = BIG_REFUND_YUAN if o.big_refund else AUTO_REFUND_YUAN
        async with self.http.post(f"{self.base}/api/v1/aftersales", headers=self.auth, json={
                "order_no": no, "kind": "refund", "reason": "客户不要了", "amount": amount}) as answer:
            body = await answer.json()
            assert answer.status in (200, 201), body
        case = body["id"]
        self.tally.refunds += 1
        if body["state"] != "pending_approval":
            return
        sent = await self.chat.text(self.supervisors[o.i % len(self.supervisors)], f"同意 {case}")
        until = sent + self.args.step_timeout_s
        while time.monotonic() < until:  # a few a day: read back through the API
            async with self.http.get(f"{self.base}/api/v1/aftersales/{case}", headers=self.auth) as answer:
                if (await answer.json())["state"] != "pending_approval":
                    self.tally.chat_steps.append(time.monotonic() - sent)
                    return
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{case} not approved in {self.args.step_timeout_s:g} s")

    async def deliver_and_settle(self, o: Planned, no: str) -> None:
        now = utcnow() + timedelta(seconds=1)  # the push's times have whole seconds: clearly after the scan out
        pushed = await self.courier.push(o.waybill, "3", [(now, "快件已揽收"), (now, "已签收")],
                                         callback_url=f"{self.base}/channels/kuaidi100/callback", salt=SALT,
                                         http=self.courier_http)
        assert pushed.status_code == 200, pushed.text
        await self.watch.wait(no, frozenset({"delivered"}), self.args.step_timeout_s)
        async with self.http.post(f"{self.base}/api/v1/orders/{no}/trigger", headers=self.auth,
                                  json={"trigger": "complete", "by": "fin1"}) as answer:
            self.tally.settlements[answer.status] = self.tally.settlements.get(answer.status, 0) + 1


async def progress(day: Day, sampler: BacklogSampler, every_s: float = 15.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        tally, backlog = day.tally, sampler.series[-1] if sampler.series else (0.0, 0.0, 0.0)
        print(f"  … {time.monotonic() - day.t0:.0f} s: allocated {len(tally.arrivals)}, shipped "
              f"{len(tally.shipped_by_us)}, failed {len(tally.failed)}, chat steps {len(tally.chat_steps)}; inbox "
              f"{backlog[1]:.0f}, outbox {backlog[2]:.0f} waiting", flush=True)


async def replay(args: argparse.Namespace, db_url: str) -> dict[str, Any]:
    planned = plan(args.orders, args.day_s, args.seed, crowd_skus())
    await seed(db_url, planned)
    port, log = free_port(), Path(args.server_log)
    log.parent.mkdir(parents=True, exist_ok=True)
    db = Database(db_url)
    courier = FakeCourier(customer=COURIER_CUSTOMER, key=COURIER_KEY)
    courier.default_state = "0"  # the sweep's polls of parcels without pushes: in transit
    async with RecordingWeCom() as wecom, FakeDouyin(DOUYIN_KEY, DOUYIN_SECRET, SHOP) as douyin, courier:
        server = await start_serve(server_env(db_url, port, wecom.base_url, douyin.base_url, courier.base_url), port, log)
        watcher, sampler, rss0 = StateWatcher(db), BacklogSampler(), peak_rss_mib(server.proc.pid)
        pg_waits, background = PgWaits(), []
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256),
                                             cookie_jar=aiohttp.CookieJar(unsafe=True)) as http, \
                    httpx.AsyncClient(timeout=10) as courier_http:
                day = Day(args, server.base, http, courier_http, wecom, douyin, courier, watcher)
                before, cpu0 = await scrape(http, server.base), server.cpu_s()
                day.t0 = day.tally.finished_at = time.monotonic()
                load0 = os.getloadavg()[0]
                background += [asyncio.create_task(watcher.run()), asyncio.create_task(progress(day, sampler)),
                               asyncio.create_task(sampler.run(http, server.base, day.t0))]
                if db_url.startswith("postgresql"):
                    background.append(asyncio.create_task(pg_waits.run(db)))
                await asyncio.gather(*(day.run_order(o) for o in planned))
                wall = day.tally.finished_at - day.t0
                for task in background:
                    task.cancel()
                machine = f"{pg_waits.summary()}; load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
                return await report(args, day, planned, db, server, before, cpu0, wall, sampler, rss0, machine)
        finally:
            for task in background:
                task.cancel()
            await server.stop()
            await db.dispose()


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=18_000)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--day-s", type=float, default=60.0, help="the 24 hours squeezed into this many seconds")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop starting orders after this")
    parser.add_argument("--step-timeout-s", type=float, default=120.0, help="a state not visible by then: failed")
    parser.add_argument("--card-wait-s", type=float, default=10.0, help="how long a hand waits for the relabel card")
    parser.add_argument("--server-log", default="var/peak_day_server.log")
    return parser.parse_args(argv)


def main() -> None:
    args = arguments()
    with database(args.db) as db_url:
        asyncio.run(replay(args, db_url))


if __name__ == "__main__":
    main()
