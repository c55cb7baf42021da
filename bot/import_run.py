"""Running `orderbot orders import`: read, check, then write in batches, with a progress bar and a summary.

Each batch of orders is one unit of work (handlers/imports.py). A batch the database or the domain refuses
as a whole is split in halves and tried again, down to the one order at fault, which is reported with its
rows; the good orders of the batch are stored. Rejected rows go to an errors CSV beside the input, each with
its row number and reason, so the file can be fixed and imported again (already imported orders count as
duplicates).
"""

from __future__ import annotations

import asyncio
import csv
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from bot import importer
from bot.cli_database import open_database
from bot.import_rows import load_mapping, read_table
from config.settings import Settings
from domain import commands as c
from domain.errors import DomainError
from handlers.bus import MessageBus
from integrations.db.uow import UnitOfWork

log = logging.getLogger(__name__)

BATCH_ORDERS = 1000  # orders per unit of work: a batch's locks last well under a second
SHOWN_PROBLEMS = 20  # printed; all of them are in the errors CSV


@dataclass
class Options:
    path: Path
    channel: str | None = None
    dry_run: bool = False
    history: bool = False
    errors: Path | None = None
    batch_orders: int = BATCH_ORDERS
    progress: bool = True


@dataclass
class Summary:
    channel: str
    rows: int
    created: int = 0
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)  # one per refused order
    rejected: list[importer.Rejected] = field(default_factory=list)  # every refused row
    refused: list[tuple[str, str]] = field(default_factory=list)  # (external id, reason) refused while writing
    shortages: c.ImportShortages = field(default_factory=c.ImportShortages)
    seconds: float = 0.0
    errors_path: Path | None = None

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} 行/秒" if speed else "– 行/秒", style="progress.data.speed")


def run(settings: Settings, opts: Options) -> Summary:
    """Check the file, then (unless a dry run) write it; ImportFileError when the file cannot be read at all."""
    started = time.perf_counter()
    table = read_table(opts.path)
    channel, mapping = load_mapping(opts.channel, table.header)
    with _progress(opts.progress) as bar:
        checking = bar.add_task("检查", total=table.total)
        parsed = importer.parse(table, channel, mapping, history=opts.history,
                                on_row=lambda n: bar.advance(checking, n))
        writing = bar.add_task("试运行" if opts.dry_run else "写入", total=parsed.rows)
        bar.advance(writing, sum(1 for _ in parsed.rejected))
        summary = Summary(channel, parsed.rows, problems=list(parsed.problems))
        if opts.dry_run:
            asyncio.run(_dry_run(settings, channel, parsed, summary))
            bar.advance(writing, parsed.rows - len(parsed.rejected))
        else:
            asyncio.run(_write(settings, channel, parsed, opts, summary, lambda n: bar.advance(writing, n)))
    summary.seconds = time.perf_counter() - started
    summary.rejected = importer.rejected_rows(parsed, summary.refused)
    summary.problems.sort(key=_row_of)
    if summary.rejected and (opts.errors or not opts.dry_run):
        summary.errors_path = opts.errors or opts.path.with_name(f"{opts.path.stem}.errors.csv")
        write_errors(summary.errors_path, summary.rejected)
    return summary


def _row_of(problem: str) -> int:
    digits = problem.removeprefix("第 ").split(" ", 1)[0]
    return int(digits) if digits.isdigit() else 0


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RowsPerSecond(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled,
        refresh_per_second=4,
    )


async def _dry_run(settings: Settings, channel: str, parsed: importer.Parsed, summary: Summary) -> None:
    """Which orders are new and which are known already: read only, nothing is written."""
    ids = [o.item.order.external_id for o in parsed.orders]
    known: set[str] = set()
    async with open_database(settings) as db, UnitOfWork(db) as uow:
        for start in range(0, len(ids), 5000):
            known |= await uow.orders.known_external_ids(channel, ids[start:start + 5000])
    summary.duplicates = len(known)
    summary.created = len(ids) - len(known)


async def _write(settings: Settings, channel: str, parsed: importer.Parsed, opts: Options, summary: Summary,
                 advance: Callable[[int], object]) -> None:
    from bot.app import deps_from
    from handlers.bootstrap import build_bus

    shortages = c.ImportShortages(source=opts.path.name)
    async with open_database(settings) as db:
        bus = build_bus(db, deps_from(settings))
        for start in range(0, len(parsed.orders), opts.batch_orders):
            batch = parsed.orders[start:start + opts.batch_orders]
            outcome = await _commit(bus, channel, [o.item for o in batch], opts.history, shortages)
            shortages = outcome.shortages
            summary.created += len(outcome.created)
            summary.duplicates += len(outcome.duplicates)
            summary.refused.extend(outcome.refused)
            advance(sum(len(o.rows) for o in batch))
        if shortages.count:
            await bus.handle(c.AnnounceImportShortages(shortages, by="cli", via="import"))
    first_row = {o.item.order.external_id: o.rows[0] for o in parsed.orders}
    summary.problems += [f"第 {first_row[ext]} 行：订单 {ext}：{reason}" for ext, reason in summary.refused]
    summary.shortages = shortages


async def _commit(bus: MessageBus, channel: str, items: Sequence[c.ImportedOrder], history: bool,
                  shortages: c.ImportShortages) -> c.ImportOutcome:
    """One unit of work for `items`; if it fails as a whole, each half on its own, down to the order at fault."""
    command = c.ImportOrders(channel, tuple(items), history, shortages, by="cli", via="import")
    try:
        return await bus.handle(command)
    except (DomainError, SQLAlchemyError) as err:
        if len(items) == 1:
            log.warning("import: order %s refused: %r", items[0].order.external_id, err)
            return c.ImportOutcome((), (), ((items[0].order.external_id, _reason(err)),), shortages)
        log.warning("import: a batch of %d orders failed (%s); trying its halves", len(items), type(err).__name__)
    half = len(items) // 2
    first = await _commit(bus, channel, items[:half], history, shortages)
    second = await _commit(bus, channel, items[half:], history, first.shortages)
    return c.ImportOutcome(first.created + second.created, first.duplicates + second.duplicates,
                           first.refused + second.refused, second.shortages)


def _reason(err: Exception) -> str:
    if isinstance(err, DomainError):
        return err.reason
    orig = getattr(err, "orig", None)
    return f"数据库拒绝保存这一单（{type(orig or err).__name__}）。"


def write_errors(path: Path, rejected: Sequence[importer.Rejected]) -> None:
    """UTF-8 with a BOM: Excel in China opens it with the Chinese intact."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["行号", "订单编号", "原因"])
        writer.writerows([r.row, r.external_id, r.reason] for r in rejected)


def report(summary: Summary, *, dry_run: bool) -> list[str]:
    """What the command prints: the counts first, then the problems (the first few; all are in the CSV)."""
    lead = "试运行，未写入任何数据。" if dry_run else ""
    verb = "可导入" if dry_run else "导入"
    lines = [
        f"{lead}渠道 {summary.channel}：{verb} {summary.created + summary.duplicates} 单"
        f"（新建 {summary.created}，已存在 {summary.duplicates}），有问题 {len(summary.problems)} 单。",
        f"共 {summary.rows} 行，用时 {summary.seconds:.1f} 秒，{summary.rows_per_s:,.0f} 行/秒；"
        f"拒绝 {len(summary.rejected)} 行。",
    ]
    if summary.errors_path is not None:
        lines.append(f"被拒绝的行及原因见 {summary.errors_path}")
    if summary.shortages.count:
        lines.append(f"缺货 {summary.shortages.count} 单（仍为已支付），已汇总为 异常 #{summary.shortages.incident_id}，"
                     "并通知主管一次。")
    lines += [f"  {p}" for p in summary.problems[:SHOWN_PROBLEMS]]
    if len(summary.problems) > SHOWN_PROBLEMS:
        lines.append(f"  …另有 {len(summary.problems) - SHOWN_PROBLEMS} 单有问题，见上面的 CSV。")
    return lines
