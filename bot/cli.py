"""The `orderbot` command: check, serve, demo, db upgrade/current, users add/list, jobs list/run, events replay/status."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from aiohttp import web
from pydantic import ValidationError

from bot import startup_checks
from bot.logsafe import configure_logging
from config.settings import Settings, UnknownSettingError, load_settings
from domain.users import ROLES
from integrations.db import migrate

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except (OSError, ValueError) as err:  # pydantic's ValidationError is a ValueError
        for line in settings_error_lines(err):
            print(f"配置有误：{line}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        return int(args.run(settings, args) or 0)
    except ValueError as err:
        print(f"错误：{err}", file=sys.stderr)
        return 2
    except Exception as err:
        if not _is_database_error(err):
            raise
        print(f"错误：{startup_checks.database_problem(err, settings.database_url)}", file=sys.stderr)
        return 2


def settings_error_lines(err: Exception) -> list[str]:
    """One line per refused setting, named as its environment variable (the TOML key is the same path)."""
    if isinstance(err, UnknownSettingError):
        return err.problems
    if isinstance(err, ValidationError):
        return [f"ORDERBOT_{'__'.join(str(part) for part in e['loc']).upper()}：{e['msg']}" for e in err.errors()]
    return [" ".join(str(err).split())]


def _is_database_error(err: Exception) -> bool:
    """What the drivers raise when the database is away or has no schema (asyncpg, aiosqlite, SQLAlchemy, sockets)."""
    from sqlalchemy.exc import SQLAlchemyError

    module = type(err).__module__.split(".")[0]
    return isinstance(err, (SQLAlchemyError, OSError, TimeoutError)) or module in ("asyncpg", "sqlite3", "aiosqlite")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderbot", description="orderbot：企业微信 / 钉钉里的订单运营助手")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="check the settings, the database schema and the WeCom/DingTalk credentials")
    check.set_defaults(run=run_check)

    serve = sub.add_parser("serve", help="run the service (after the same checks as `check`; a fatal one stops it)")
    serve.set_defaults(run=run_serve)

    demo = sub.add_parser("demo", help="SQLite under ./var/, demo data, fake WeCom, chat console")
    demo.add_argument("--port", type=int, default=None)
    demo.set_defaults(run=run_demo)

    db = sub.add_parser("db", help="database schema").add_subparsers(required=True, metavar="ACTION")
    db.add_parser("upgrade", help="run Alembic migrations to head").set_defaults(run=run_db_upgrade)
    db.add_parser("current", help="the schema revision and whether it is the newest").set_defaults(run=run_db_current)

    users = sub.add_parser("users", help="people who may use the bot").add_subparsers(required=True, metavar="ACTION")
    add = users.add_parser("add", help="add or update a user")
    add.add_argument("userid", help="WeCom userid")
    add.add_argument("--name", required=True)
    add.add_argument("--role", action="append", required=True, choices=sorted(ROLES))
    add.add_argument("--store", default=None, help="store code (warehouse staff)")
    add.add_argument("--dingtalk-id", default=None, help="DingTalk staffId (default: the same as USERID)")
    add.set_defaults(run=run_users_add)
    users.add_parser("list", help="list users").set_defaults(run=run_users_list)

    stores = sub.add_parser("stores", help="the store register (sender on e-waybills)").add_subparsers(
        required=True, metavar="ACTION")
    add_store = stores.add_parser("add", help="register a store or change its name, address or phone")
    add_store.add_argument("code", help="store code, e.g. SH01")
    add_store.add_argument("--name", required=True)
    add_store.add_argument("--address", required=True, help="the sender address printed on its waybills")
    add_store.add_argument("--phone", default="")
    add_store.set_defaults(run=run_stores_add)
    stores.add_parser("list", help="list the registered stores").set_defaults(run=run_stores_list)

    orders = sub.add_parser("orders", help="orders").add_subparsers(required=True, metavar="ACTION")
    importing = orders.add_parser("import", help="import a CSV or XLSX export of a channel's orders")
    importing.add_argument("file", help=".csv (UTF-8 or GBK) or .xlsx")
    importing.add_argument("--channel", default=None, help="douyin, miniprogram, k3, ... (default: recognised from the columns)")
    importing.add_argument("--dry-run", action="store_true", help="check the file and report; write nothing")
    importing.add_argument("--history", action="store_true",
                           help="closed orders (completed, cancelled) stored as they are: no stock, no pushes")
    importing.add_argument("--errors", default=None, metavar="PATH",
                           help="where to write the rejected rows (default: FILE.errors.csv beside the file)")
    importing.add_argument("--batch", type=_positive, default=1000, metavar="N", help="orders per transaction")
    importing.add_argument("--no-progress", action="store_true", help="no progress bar (logs, cron)")
    importing.set_defaults(run=run_orders_import)

    jobs = sub.add_parser("jobs", help="scheduled jobs").add_subparsers(required=True, metavar="ACTION")
    jobs.add_parser("list", help="list the scheduled jobs").set_defaults(run=run_jobs_list)
    run_job = jobs.add_parser("run", help="run one job now, once")
    run_job.add_argument("name", help="job id, see `orderbot jobs list`")
    run_job.set_defaults(run=run_jobs_run)

    events = sub.add_parser("events", help="the order event bus").add_subparsers(required=True, metavar="ACTION")
    replay = events.add_parser("replay", help="deliver a subscriber's events again, from an event id on")
    replay.add_argument("--subscriber", required=True, help="a name under EVENTS__SUBSCRIBERS, or jetstream")
    replay.add_argument("--from", dest="from_id", type=int, required=True, help="the first event id to send again")
    replay.set_defaults(run=run_events_replay)
    events.add_parser("status", help="each subscriber's cursor, backlog and last error").set_defaults(
        run=run_events_status)
    return parser


def run_events_replay(settings: Settings, args: argparse.Namespace) -> int:
    from bot import events

    old, last, count = asyncio.run(events.replay(settings, args.subscriber, args.from_id))
    print(f"订阅方 {args.subscriber} 将从事件 {args.from_id} 起重新接收（原位置 {old}，最新事件 {last}，"
          f"共 {count} 条），由运行中的 orderbot serve 投递")
    return 0


def run_events_status(settings: Settings, args: argparse.Namespace) -> int:
    from bot import events

    for line in asyncio.run(events.status(settings)):
        print(line)
    return 0


def run_orders_import(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot import import_run
    from bot.import_rows import ImportFileError

    errors = Path(args.errors) if args.errors else None
    options = import_run.Options(Path(args.file), args.channel, dry_run=args.dry_run, history=args.history,
                                 errors=errors, batch_orders=args.batch, progress=not args.no_progress)
    try:
        summary = import_run.run(settings, options)
    except ImportFileError as err:
        raise ValueError(str(err)) from err
    for line in import_run.report(summary, dry_run=args.dry_run):
        print(line)
    return 1 if summary.problems else 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("须为正整数")
    return value


def run_check(settings: Settings, args: argparse.Namespace) -> int:
    """Every problem on a line of its own; exit 1 when one of them would stop `serve`."""
    problems = asyncio.run(startup_checks.all_problems(settings))
    for problem in problems:
        print(f"{'错误' if problem.fatal else '提醒'}：{problem.text}")
    if not problems:
        print("检查通过：配置、数据库版本和平台凭证都没有问题。")
    return 1 if any(p.fatal for p in problems) else 0


def run_serve(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import create_app

    problems = asyncio.run(startup_checks.all_problems(settings))
    for problem in problems:
        if problem.fatal:
            print(f"拒绝启动：{problem.text}", file=sys.stderr)
        else:
            log.warning("%s", problem.text)
    if any(p.fatal for p in problems):
        return 2
    web.run_app(create_app(settings, schedule=True), host=settings.http.host, port=settings.http.port,
                print=_log_banner)  # through the log: a JSON log stays JSON
    return 0


def _log_banner(text: str) -> None:
    for line in text.splitlines():
        if line.strip("= "):
            log.info("%s", line.strip("= "))


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    from bot.demo import run

    return run(settings, port=args.port)


def run_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    migrate.upgrade(settings.database_url)
    print(f"数据库已升级到最新版本：{_safe_url(settings.database_url)}")
    return 0


def run_db_current(settings: Settings, args: argparse.Namespace) -> int:
    current = asyncio.run(migrate.current_revision(settings.database_url))
    head = migrate.head_revision()
    where = _safe_url(settings.database_url)
    if current == head:
        print(f"数据库版本 {current}，已是最新：{where}")
        return 0
    if current is None:
        print(f"数据库还没有建表（最新版本 {head}）：请运行 orderbot db upgrade（{where}）")
    else:
        print(f"数据库版本 {current}，最新版本 {head}：请运行 orderbot db upgrade（{where}）")
    return 1


def run_users_add(settings: Settings, args: argparse.Namespace) -> int:
    from bot.users_cli import add_user

    return add_user(settings, args.userid, args.name, args.role, args.store, args.dingtalk_id)


def run_users_list(settings: Settings, args: argparse.Namespace) -> int:
    from bot.users_cli import list_users

    return list_users(settings)


def run_stores_add(settings: Settings, args: argparse.Namespace) -> int:
    from bot.store_cli import add_store

    return add_store(settings, args.code, args.name, args.address, args.phone)


def run_stores_list(settings: Settings, args: argparse.Namespace) -> int:
    from bot.store_cli import list_stores

    return list_stores(settings)


def run_jobs_list(settings: Settings, args: argparse.Namespace) -> int:
    from bot.jobs_cli import list_jobs

    return list_jobs(settings)


def run_jobs_run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.jobs_cli import run_job

    return run_job(settings, args.name)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    raise SystemExit(main())
