"""`orderbot orders import`: the rows of a channel's export, mapped by config/field_mapping.toml, become the
orders to import (one per external id, its rows its lines) and the rows refused, each with its row number
and reason. Every value is checked against domain/limits.py, the same limits and sentences as the REST API.

A bad row refuses its whole order (never half an order); the other orders go on. A quantity must be a whole
number: 1.7 is refused, never rounded to 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.import_rows import CUSTOMER_KEY_COLUMNS, REQUIRED, ImportFileError, Table
from domain import commands as c
from domain import limits as lim
from domain.customers import CustomerKeys

_NO_KEYS = CustomerKeys()
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")  # exports carry Beijing time, without a zone
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


@dataclass(frozen=True)
class Rejected:
    row: int
    external_id: str
    reason: str


@dataclass(frozen=True)
class ParsedOrder:
    item: c.ImportedOrder
    rows: tuple[int, ...]


@dataclass
class Parsed:
    orders: list[ParsedOrder] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)  # every row of every refused order
    problems: list[str] = field(default_factory=list)  # one per refused order: "第 7 行：数量须在 1 到 10000 之间。"
    rows: int = 0


class _RowProblem(ValueError):
    def __init__(self, row: int, reason: str) -> None:
        super().__init__(reason)
        self.row, self.reason = row, reason


@dataclass
class _Draft:
    """An order being assembled from its rows, in file order."""

    rows: list[int]
    head: dict[str, Any] | None = None
    lines: list[c.LineInput] = field(default_factory=list)
    problem: _RowProblem | None = None


def parse(table: Table, channel: str, mapping: dict[str, Any], *, history: bool = False,
          now: datetime | None = None, on_row: Any = None) -> Parsed:
    """`on_row(n)` is told every few thousand rows (the progress bar)."""
    columns = {name: table.header.index(col) for name, col in mapping.items()
               if isinstance(col, str) and col in table.header}
    missing = [mapping.get(f, f) for f in REQUIRED if f not in columns]
    if history:  # a closed order is stored at its own time and in its own final state, both from the file
        status_key = "closed" if "closed" in mapping else "paid"
        missing += [mapping.get(f, f"{f}（映射里没有这一列）") for f in ("created_at", status_key) if f not in columns]
    if missing:
        raise ImportFileError(f"文件缺少列：{'、'.join(missing)}（渠道 {channel} 的映射见 config/field_mapping.toml）")
    reason = lim.CHANNEL.problem(channel)
    if reason:
        raise ImportFileError(reason)
    reader = _Reader(channel, mapping, columns, history, now or datetime.now(UTC))
    drafts: dict[str, _Draft] = {}
    count = 0
    for number, cells in table.rows():
        count += 1
        reader.add(drafts, number, cells)
        if on_row is not None and count % 5000 == 0:
            on_row(5000)
    if on_row is not None:
        on_row(count % 5000)
    result = Parsed(rows=count)
    for external_id, draft in drafts.items():
        _finish(result, reader, external_id, draft)
    return result


def _finish(result: Parsed, reader: _Reader, external_id: str, draft: _Draft) -> None:
    first = draft.rows[0]
    problem = draft.problem
    if not external_id:
        problem = _RowProblem(first, f"缺少{reader.mapping['external_id']}。")
    elif problem is None and (too_many := lim.ORDER_LINES.problem(len(draft.rows))):
        problem = _RowProblem(first, too_many)
    if problem is None and draft.head is not None:
        command = c.CreateOrder(channel=reader.channel, external_id=external_id, lines=tuple(draft.lines),
                                by="cli", via="import", **draft.head["order"])
        item = c.ImportedOrder(command, draft.head.get("state"), draft.head.get("created_at"))
        result.orders.append(ParsedOrder(item, tuple(draft.rows)))
        return
    assert problem is not None
    result.problems.append(f"第 {problem.row} 行：{problem.reason}")
    for row in draft.rows:
        reason = problem.reason if row == problem.row else f"同一订单的第 {problem.row} 行有误，整单未导入。"
        result.rejected.append(Rejected(row, external_id, reason))


class _Reader:
    def __init__(self, channel: str, mapping: dict[str, Any], columns: dict[str, int], history: bool,
                 now: datetime) -> None:
        self.channel, self.mapping, self.columns, self.history, self.now = channel, mapping, columns, history, now
        self.paid_values = set(mapping.get("paid_values", []))
        self.closed_states: dict[str, str] = dict(mapping.get("closed_states", {}))
        self.closed_key = "closed" if "closed" in mapping else "paid"  # the status column closed states are read from
        self.closed_column = mapping.get(self.closed_key, "")

    def add(self, drafts: dict[str, _Draft], number: int, cells: list[str]) -> None:
        def value(name: str) -> str:
            index = self.columns.get(name)
            return cells[index].strip() if index is not None and index < len(cells) else ""

        external_id = value("external_id")
        draft = drafts.get(external_id)
        if draft is None:
            draft = drafts[external_id] = _Draft([])
        draft.rows.append(number)
        if draft.problem is not None or not external_id:
            return
        try:
            if draft.head is None:
                draft.head = self._head(number, value)
            draft.lines.append(_line(number, value, self.mapping))
        except _RowProblem as problem:
            draft.problem = problem

    def _head(self, no: int, value: Any) -> dict[str, Any]:
        """The order's own fields, from its first row (as the REST API reads them from the body)."""
        external_id = value("external_id")
        keys = {name: _checked(no, getattr(lim, limit), value(name), empty_ok=True)
                for name, limit in CUSTOMER_KEY_COLUMNS.items() if name in self.columns}
        head: dict[str, Any] = {"order": {
            "customer_id": _checked(no, lim.CUSTOMER_ID, value("customer_id"), empty_ok=True),  # "": by the keys
            "customer_name": _checked(no, lim.CUSTOMER_NAME, value("customer_name")),
            "customer_phone": _checked(no, lim.PHONE, value("customer_phone"), empty_ok=True),
            "customer": CustomerKeys(**keys) if keys else _NO_KEYS,
            "address": _checked(no, lim.ADDRESS, _required(no, value("address"), self.mapping["address"])),
            "store": _checked(no, lim.STORE, value("store"), empty_ok=True) or None,
            "paid": (value("paid") in self.paid_values) if "paid" in self.mapping else True,
        }}
        _checked(no, lim.EXTERNAL_ID, external_id)
        status = value(self.closed_key)
        closed = self.closed_states.get(status)
        if self.history:
            if closed is None:
                raise _RowProblem(no, f"历史导入只收已完成或已取消的订单（{self.closed_column}：{status or '空'}）。")
            head["state"] = closed
            head["created_at"] = self._when(no, value("created_at"))
        elif closed is not None:
            raise _RowProblem(no, f"订单已结束（{self.closed_column}：{status}），请用 --history 导入历史订单。")
        return head

    def _when(self, no: int, text: str) -> datetime:
        at = _parse_time(text)
        if at is None:
            raise _RowProblem(no, f"下单时间看不懂（{text or '空'}），应如 2024-03-01 12:30:00。")
        if at > self.now:
            raise _RowProblem(no, f"下单时间 {text} 晚于现在。")
        return at


def _parse_time(text: str) -> datetime | None:
    text = text.strip()
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
        for form in TIME_FORMATS:
            try:
                at = datetime.strptime(text, form)
                break
            except ValueError:
                continue
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=CHINA)).astimezone(UTC)


def _line(no: int, value: Any, m: dict[str, Any]) -> c.LineInput:
    sku = _checked(no, lim.SKU, _required(no, value("sku"), m["sku"]))
    qty_text, price_text = value("qty"), value("unit_price")
    try:
        qty = Decimal(qty_text)
        price = Decimal(price_text.replace("¥", "").replace(",", ""))
    except (InvalidOperation, ValueError):
        qty = price = Decimal("NaN")
    if not (qty.is_finite() and price.is_finite()):
        raise _RowProblem(no, f"数量或单价不是数字（{qty_text} / {price_text}）。")
    if qty != qty.to_integral_value():  # 1.7 is refused, never rounded to 1
        raise _RowProblem(no, lim.QTY.fraction_problem(qty_text))
    # clamped as decimals first: int() of 1e999999999 would build a billion-digit number
    units = int(_clamp(qty, lim.QTY.low - 1, lim.QTY.high + 1))
    fen = -1 if price < 0 else int((_clamp(price, lim.UNIT_PRICE_FEN.low - 1, lim.UNIT_PRICE_FEN.high + 1, scale=100) * 100).to_integral_value())
    _limited(no, lim.QTY.problem(units) or lim.UNIT_PRICE_FEN.problem(fen))
    return c.LineInput(sku, units, fen, _checked(no, lim.PRODUCT_NAME, value("name")))


def _clamp(value: Decimal, low: int, high: int, *, scale: int = 1) -> Decimal:
    """`value` kept within one step past [low, high] / scale, so that a value out of range still reads as out of range."""
    return max(min(value, Decimal(high) / scale), Decimal(low) / scale)


def _checked(no: int, limit: lim.Limit, value: str, *, empty_ok: bool = False) -> str:
    """The value when it is within its limit (the same limit and sentence as the REST API and chat)."""
    if not (empty_ok and value == ""):
        _limited(no, limit.problem(value))
    return value


def _limited(no: int, reason: str | None) -> None:
    if reason:
        raise _RowProblem(no, reason)


def _required(no: int, value: str, column: str) -> str:
    if not value:
        raise _RowProblem(no, f"缺少{column}。")
    return value


def rejected_rows(parsed: Parsed, refused: Iterable[tuple[str, str]]) -> list[Rejected]:
    """Every rejected row, in row order: refused while parsing, or refused by the database or the domain
    (`refused`: external id and reason, for every row of that order)."""
    rows_of = {o.item.order.external_id: o.rows for o in parsed.orders}
    out = list(parsed.rejected)
    for external_id, reason in refused:
        out.extend(Rejected(row, external_id, reason) for row in rows_of.get(external_id, ()))
    return sorted(out, key=lambda r: r.row)
