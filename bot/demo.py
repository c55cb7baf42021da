"""`orderbot demo`: SQLite under ./var/, seeded demo data, a fake WeCom and a chat console, in one process.

Everything the demo shows runs the production path: the console signs each message as a WeCom callback and
POSTs it to the app's own /wecom/callback, and replies leave through the outbox to the in-process fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import socket
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

from bot import console, demo_data, demo_scenarios
from bot.app import create_app, deps_from
from config.settings import DingtalkSettings, Kuaidi100WaybillSettings, Settings, WaybillSettings
from domain import commands as c
from domain.clock import utcnow
from domain.safety_stock import RegisterSku
from domain.stores import SaveStore
from domain.users import ROLES, User
from handlers.bootstrap import build_bus
from handlers.bus import MessageBus
from integrations.db import migrate
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.fakes.courier import FakeCourier
from integrations.fakes.kuaidi100_label import FakeKuaidi100Label
from integrations.fakes.wecom import FakeWeCom

HOST = "127.0.0.1"
DEMO_DB = Path("var") / "demo.db"
CORP_ID = "ww-orderbot-demo"
SECRET = "orderbot-demo-secret"
TOKEN = "orderbotdemotoken"
AES_KEY = "b3JkZXJib3QtZGVtby1hZXMta2V5LTMyLWJ5dGVzISE"  # base64 of 32 bytes, '=' stripped, as WeCom gives it
API_TOKEN = "demo-token"
COURIER_SALT = "orderbot-demo-courier-salt"
VIA = "demo"
CHINA = timedelta(hours=8)  # the dashboard's "today" starts at midnight China time
STEP = timedelta(minutes=12)  # between two warehouse steps of a crowd order (less just after midnight)
BATCH = 25  # crowd orders per FireOrderTriggers

STORES = demo_data.STORES
USERS = demo_data.USERS
SKUS = demo_data.SKUS  # sku -> (name, unit price in fen)
STOCK = {
    "SH01": {"BP-001": 40, "OF-002": 60, "SP-003": 120, "WB-004": 30},
    "SH02": {"BP-001": 25, "OF-002": 40, "SP-003": 80, "WB-004": 8},
    "HZ01": {"BP-001": 30, "OF-002": 50, "SP-003": 200, "WB-004": 20},
}


@dataclass(frozen=True)
class DemoOrder:
    key: str  # what the demo calls it
    channel: str
    external_id: str
    customer: tuple[str, str, str]  # id, name, phone
    address: str
    store: str | None
    lines: tuple[tuple[str, int], ...]  # (sku, qty)
    paid: bool = True
    steps: tuple[tuple[str, str, str | None], ...] = ()  # (trigger, by, waybill)


PUDONG_4S = ("C-4S-PD", "浦东宝诚4S店", "13800001111")
XUHUI_4S = ("C-4S-XH", "徐汇永达4S店", "13800002222")
HANGZHOU_4S = ("C-4S-HZ", "杭州元通4S店", "13900003333")
PICKED = (("pick", "wh1", None), ("check", "wh1", None))
ORDERS = (
    DemoOrder("new", "douyin", "DY2602080001", ("C-DY-0001", "张先生", "13600000001"),
              "上海市浦东新区张杨路500号", "SH01", (("BP-001", 1),)),
    DemoOrder("picking", "douyin", "DY2602080002", ("C-DY-0002", "王先生", "13600000002"),
              "上海市浦东新区世纪大道88号", "SH01", (("OF-002", 2), ("SP-003", 4)), steps=(("pick", "wh1", None),)),
    DemoOrder("packed", "miniprogram", "MP2602080003", ("C-MP-0003", "李女士", "13600000003"),
              "上海市浦东新区锦绣路1001弄", "SH01", (("WB-004", 2),),
              steps=(*PICKED, ("pack", "wh1", "SF1402600003"))),
    DemoOrder("shipped", "miniprogram", "MP2602080004", HANGZHOU_4S, "杭州市西湖区文三路259号", "HZ01",
              (("BP-001", 12),),
              steps=(("pick", "wh2", None), ("check", "wh2", None), ("pack", "wh2", "YT8800260004"),
                     ("ship", "wh2", None))),
    DemoOrder("split", "k3", "K3-SO-2602080005", ("C-K3-0101", "上海驰骋汽修厂", "02150000005"),
              "上海市闵行区莘庄工业区申富路66号", None, (("SP-003", 150), ("WB-004", 25))),
    DemoOrder("out_of_stock", "k3", "K3-SO-2602080006", PUDONG_4S, "上海市浦东新区龙阳路2000号", "SH01",
              (("BP-001", 60),)),
    DemoOrder("unpaid", "douyin", "DY2602080007", ("C-DY-0007", "赵女士", "13600000007"),
              "上海市徐汇区漕溪北路398号", "SH02", (("WB-004", 1),), paid=False),
    DemoOrder("delivered", "k3", "K3-SO-2602080008", XUHUI_4S, "上海市徐汇区宜山路700号", "SH02",
              (("BP-001", 6),),
              steps=(("pick", "wh1", None), ("check", "wh1", None), ("pack", "wh1", "SF1402600008"),
                     ("ship", "wh1", None), ("deliver", "courier", None))),
)
AFTERSALES = (  # (order key, kind, reason, amount in fen)
    ("delivered", "return", "刹车片装车后异响，4S店退回5套", 150_000),
    ("shipped", "return", "整批刹车片型号发错（应为后轮），退货退款", 280_000),
)


@dataclass
class Seeded:
    orders: dict[str, str] = field(default_factory=dict)  # demo key -> order_no
    aftersales: list[str] = field(default_factory=list)
    crowd: dict[str, list[str]] = field(default_factory=dict)  # end state -> the crowd's order numbers


SEEDED = web.AppKey("demo_seeded", Seeded)


def demo_settings(settings: Settings, db_path: Path, fake: FakeWeCom, port: int | None = None,
                  courier: FakeCourier | None = None, labels: FakeKuaidi100Label | None = None) -> Settings:
    """The user's settings with everything outward pointed at the demo: its database, the fake WeCom."""
    wecom = settings.wecom.model_copy(update={
        "corp_id": CORP_ID, "secret": SecretStr(SECRET), "agent_id": fake.agent_id, "token": SecretStr(TOKEN),
        "aes_key": SecretStr(AES_KEY),
        "api_base": fake.base_url,
    })
    http = settings.http.model_copy(update={"host": HOST, "port": port or settings.http.port})
    logistics = settings.logistics if courier is None else settings.logistics.model_copy(update={
        "api_base": courier.base_url, "customer": courier.customer, "key": SecretStr(courier.key),
        "callback_url": f"http://{HOST}:{http.port}/channels/kuaidi100/callback", "salt": SecretStr(COURIER_SALT),
    })
    waybills = {} if labels is None else {  # 打包 takes a Kuaidi100 e-waybill from the fake, for every store
        "waybill": WaybillSettings(default="kuaidi100"),
        "kuaidi100": Kuaidi100WaybillSettings(api_base=labels.base_url, key=labels.key, secret=SecretStr(labels.secret),
                                              partner_id="DEMO-MONTHLY", kuaidicom="yuantong")}
    return settings.model_copy(update={
        **waybills,
        "database_url": f"sqlite+aiosqlite:///{db_path}", "wecom": wecom, "http": http, "logistics": logistics,
        "api": settings.api.model_copy(update={"token": SecretStr(API_TOKEN)}),
        "dingtalk": DingtalkSettings(),  # no DingTalk account in the demo: nothing leaves the machine
        # labels as PDF files beside the demo database (var/labels/), one folder for every demo store
        "printing": settings.printing.model_copy(update={"printers": settings.printing.printers or {
            store: f"pdf://{db_path.parent / 'labels'}" for store in STORES}}),
        "ask": settings.ask.model_copy(update={"store_names": settings.ask.store_names or STORES}),
        # 概况 in the console answers with a dashboard link that works on this machine (a fresh secret each run)
        "dashboard": settings.dashboard.model_copy(update={
            "secret": SecretStr(secrets.token_urlsafe(32)), "public_url": f"http://{HOST}:{http.port}"}),
    })


def reset_database(db_path: Path) -> str:
    """A fresh, migrated database on every run, so the demo always starts from the same story."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{db_path}"
    migrate.upgrade(url)
    return url


async def seed(settings: Settings) -> Seeded:
    """Users by hand (there is no command for them); stock, orders and after-sales through the bus."""
    db = Database(settings.database_url)
    seeded = Seeded()
    try:
        async with UnitOfWork(db) as uow:
            for user in USERS:
                await uow.users.upsert(User(user.userid, user.name, user.roles, user.store, user.userid), utcnow())
            await uow.commit()
        bus = build_bus(db, deps_from(settings))
        for store, counts in STOCK.items():
            for sku, on_hand in counts.items():
                await bus.handle(c.SetStock(store, sku, on_hand, by="buyer1", via=VIA))
        for spec in ORDERS:
            customer_id, name, phone = spec.customer
            lines = tuple(c.LineInput(sku, qty, SKUS[sku][1], SKUS[sku][0]) for sku, qty in spec.lines)
            order, _ = await bus.handle(c.CreateOrder(
                channel=spec.channel, external_id=spec.external_id, customer_id=customer_id, customer_name=name,
                customer_phone=phone, address=spec.address, lines=lines, paid=spec.paid, store=spec.store,
                by=spec.channel, via=VIA,
            ))
            seeded.orders[spec.key] = order.order_no
            for trigger, by, waybill in spec.steps:
                await bus.handle(c.FireOrderTrigger(order.order_no, trigger, by=by, via=VIA, waybill=waybill))
        for key, kind, reason, amount_fen in AFTERSALES:
            aftersale = await bus.handle(
                c.OpenAfterSale(seeded.orders[key], kind, reason, amount_fen, by="cs1", via=VIA)
            )
            seeded.aftersales.append(aftersale.aftersale_no)
        await seed_crowd(bus, seeded)
        for store, (address, phone) in demo_data.STORE_ADDRESSES.items():  # last: the seeding takes no e-waybills
            await bus.handle(SaveStore(store, STORES[store], address, phone, by="limin", via=VIA))
    finally:
        await db.dispose()
    return seeded


def seeded_day(now: datetime) -> tuple[datetime, timedelta, timedelta]:
    """When the seeded day starts, how long orders keep arriving, and the gap between two warehouse steps: all of
    it today (China time) and before `now`, however early in the day the demo starts (just after midnight the day
    is minutes long and the steps seconds apart)."""
    midnight = (now + CHINA).replace(hour=0, minute=0, second=0, microsecond=0) - CHINA
    margin = min(timedelta(minutes=5), (now - midnight) / 20)
    start = max(now - timedelta(hours=9), midnight + margin)
    end = now - min(timedelta(minutes=30), (now - midnight) / 20)
    steps = max(len(path) for path in demo_data.PATHS.values())
    step_gap = min(STEP, (end - start) * 0.4 / steps)
    return start, end - start - step_gap * steps, step_gap


async def seed_crowd(bus: MessageBus, seeded: Seeded) -> None:
    """The catalogue, the crowd stores' stock and a day of orders in every state, through the bus, on a clock that
    walks through today (so the dashboard's processing times and the audit trail read like a real day).
    Steps go in batches (FireOrderTriggers: one unit of work per trigger and batch) to keep start-up short."""
    real_clock = bus.deps.clock
    now = real_clock()
    start, span, step_gap = seeded_day(now)
    try:
        bus.deps.clock = lambda: start
        for sku, (name, _) in demo_data.SKUS.items():
            await bus.handle(RegisterSku(sku, name, replenish_threshold=40, lead_time_days=3, by="buyer1", via=VIA))
        for store, skus in demo_data.crowd_stock().items():
            for sku in skus:
                await bus.handle(c.SetStock(store, sku, demo_data.CROWD_STOCK, by="buyer1", via=VIA))
        crowd = demo_data.crowd_orders()
        created: dict[str, list[tuple[str, datetime]]] = {}
        for i, spec in enumerate(crowd):
            at = start + span * i / len(crowd)
            bus.deps.clock = lambda at=at: at  # type: ignore[misc]
            customer_id, name, phone = spec.customer
            lines = tuple(c.LineInput(sku, qty, SKUS[sku][1], SKUS[sku][0]) for sku, qty in spec.lines)
            order, _ = await bus.handle(c.CreateOrder(
                channel=spec.channel, external_id=spec.external_id, customer_id=customer_id, customer_name=name,
                customer_phone=phone, address=spec.address, lines=lines, paid=spec.end_state != "pending_payment",
                store=spec.store, by=spec.channel, via=VIA,
            ))
            created.setdefault(spec.end_state, []).append((order.order_no, at))
        for state, orders in created.items():
            seeded.crowd[state] = [no for no, _ in orders]
            for chunk in range(0, len(orders), BATCH):
                batch = orders[chunk:chunk + BATCH]
                for step, trigger in enumerate(demo_data.PATHS[state], start=1):
                    at = batch[-1][1] + step_gap * step
                    bus.deps.clock = lambda at=at: at  # type: ignore[misc]
                    nos = tuple(no for no, _ in batch)
                    waybills = tuple((no, f"YT9{no[-8:]}") for no in nos) if trigger == "pack" else ()
                    outcome = await bus.handle(c.FireOrderTriggers(nos, trigger, by=_actor(trigger), via=VIA,
                                                                   waybills=waybills))
                    if outcome.refused:
                        raise RuntimeError(f"demo seeding: {trigger} refused: {outcome.refused}")
    finally:
        bus.deps.clock = real_clock


def _actor(trigger: str) -> str:
    if trigger in ("pick_up", "deliver", "report_exception"):
        return "courier"
    return {"complete": "fin1", "cancel": "cs1"}.get(trigger, "warehouse")


async def build_demo(
    settings: Settings, db_path: Path, *, port: int | None = None
) -> tuple[web.Application, FakeWeCom]:
    """The seeded app with the console, and its started fake WeCom (closed when the app shuts down).

    `db_path` must hold a migrated database (`reset_database`); migrations are synchronous.
    """
    fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET)
    courier, labels = FakeCourier(), FakeKuaidi100Label()
    await fake.start()
    await courier.start()
    await labels.start()
    try:
        settings = demo_settings(settings, db_path, fake, port, courier, labels)
        seeded = await seed(settings)
        app = create_app(settings)
    except BaseException:
        await fake.close()
        await courier.close()
        await labels.close()
        raise
    app[SEEDED] = seeded
    console.install(app, fake, STORES)
    demo_scenarios.install(app, courier, seeded.crowd)

    async def close_fake(_: web.Application) -> None:
        await fake.close()
        await courier.close()
        await labels.close()

    app.on_cleanup.append(close_fake)  # after the cleanup contexts: the dispatcher has stopped by then
    return app, fake


def banner(base: str, db_path: Path, fake: FakeWeCom, seeded: Seeded) -> str:
    users = [
        f"    {u.userid:<7} {u.name}  {'、'.join(ROLES[r] for r in sorted(u.roles))} / {', '.join(sorted(u.roles))}"
        + (f"  {u.store} {STORES[u.store]}" if u.store else "")
        for u in USERS
    ]
    orders = seeded.orders
    return "\n".join([
        "",
        "orderbot 演示已启动 / demo is running（无需任何账号 / no account needed）",
        f"  聊天控制台 Chat console : {base}/demo/console",
        f"  REST API               : {base}/api/v1   （Authorization: Bearer {API_TOKEN}）",
        f"      例 e.g. curl -H 'Authorization: Bearer {API_TOKEN}' {base}/api/v1/orders/{orders['packed']}",
        f"  数据库 Database         : {db_path}（每次启动重建 / recreated on every start）",
        f"  假企业微信 Fake WeCom   : {fake.base_url}",
        "  可扮演的用户 Users to try:",
        *users,
        "  试试 Try:",
        "    1. 以 wh1 王强 发送“待办” — as wh1, type 待办 (my tasks)",
        f"    2. 以 wh1 在“扫码”框输入运单号 SF1402600003 — as wh1, scan the waybill of packed order {orders['packed']}",
        f"    3. 以 sup1 王芳 发送“异常”，或在退款卡片上点“同意” — as sup1, type 异常 or click 同意 on the "
        f"refund card ({'、'.join(seeded.aftersales)})",
        "  按 Ctrl+C 退出 / press Ctrl+C to stop",
        "",
    ])


async def serve(settings: Settings, db_path: Path, port: int) -> int:
    app, fake = await build_demo(settings, db_path, port=port)
    runner = web.AppRunner(app, access_log=None)  # the console polls every second: no access log
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, HOST, port).start()
        except OSError as err:
            print(f"端口 {port} 无法使用（{err.strerror}）。换一个端口：orderbot demo --port 8090", file=sys.stderr)
            return 1
        print(banner(f"http://{HOST}:{port}", db_path, fake, app[SEEDED]), flush=True)
        await _until_stopped()
    finally:
        await runner.cleanup()
    return 0


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers on Windows
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("演示已停止 / demo stopped", flush=True)


def _port_taken(port: int) -> str | None:
    """Checked before the database is reset, so a second demo cannot wipe the data of a running one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as err:
            return err.strerror or str(err)
    return None


def run(settings: Settings, port: int | None = None) -> int:
    port = port or settings.http.port
    taken = _port_taken(port)
    if taken:
        print(f"端口 {port} 无法使用（{taken}）。换一个端口：orderbot demo --port 8090", file=sys.stderr)
        return 1
    db_path = DEMO_DB.resolve()
    reset_database(db_path)
    print(f"演示数据库 / demo database: {db_path}", flush=True)
    for noisy in ("httpx", "aiohttp.access", "transitions"):  # a line per send, poll and state: noise here
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return asyncio.run(serve(settings, db_path, port))
    except KeyboardInterrupt:
        return 0
