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
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

from bot import console, demo_scenarios
from bot.app import create_app
from bot.demo_data import STORES, USERS
from bot.demo_seed import Seeded, seed
from config.settings import DingtalkSettings, Kuaidi100WaybillSettings, Settings, WaybillSettings
from domain.users import ROLES
from integrations.db import migrate
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
