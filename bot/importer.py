"""`orderbot orders import`: the CSV and XLSX exports of the old way of working, mapped per channel by
config/field_mapping.toml, become orders through the same use case as the API (idempotent on channel +
external id). A bad row is reported with its row number and skips its order; nothing half-written.
"""

from __future__ import annotations

import csv
import io
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from domain import commands as c
from domain import limits as lim

MAPPING_FILE = Path(__file__).resolve().parents[1] / "config" / "field_mapping.toml"
REQUIRED = ("external_id", "customer_id", "address", "sku", "qty", "unit_price")


class ImportFileError(ValueError):
    """The file as a whole cannot be read; the message is for the person running the command."""


@dataclass
class Parsed:
    commands: list[c.CreateOrder] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "第 7 行：商品数量不是正整数（0）"


def load_mapping(channel: str | None, rows: list[dict[str, str]], path: Path = MAPPING_FILE) -> tuple[str, dict[str, Any]]:
    """The channel's column mapping; without a channel, the one whose columns the file has."""
    mappings: dict[str, dict[str, Any]] = tomllib.loads(path.read_text(encoding="utf-8"))
    if channel is None:
        header = set(rows[0]) if rows else set()
        fitting = [name for name, m in mappings.items() if all(m[f] in header for f in REQUIRED)]
        if len(fitting) != 1:
            raise ImportFileError(f"认不出是哪个渠道的导出，请用 --channel 指定（可选：{'、'.join(mappings)}）。")
        channel = fitting[0]
    if channel not in mappings:
        raise ImportFileError(f"没有渠道“{channel}”的字段映射（可选：{'、'.join(mappings)}），请在 {path} 中添加。")
    return channel, dict(mappings[channel])


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise ImportFileError(f"找不到文件 {path}。")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx_rows(path)
    if path.suffix.lower() == ".csv":
        return _csv_rows(path)
    raise ImportFileError("只支持 .csv 和 .xlsx 文件。")


def _csv_rows(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportFileError("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV。")
    try:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(io.StringIO(text))]
    except csv.Error as err:  # e.g. a field over csv's size limit, or a stray quote in strict files
        raise ImportFileError(f"CSV 文件格式有误：{err}。") from None


def _xlsx_rows(path: Path) -> list[dict[str, str]]:
    from openpyxl import load_workbook

    try:
        sheet = load_workbook(path, read_only=True, data_only=True).worksheets[0]
    except Exception as err:  # openpyxl raises many kinds for a damaged file
        raise ImportFileError(f"无法读取 Excel 文件：{type(err).__name__}") from err
    rows = sheet.iter_rows(values_only=True)
    header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
    return [
        {h: _cell(v) for h, v in zip(header, values, strict=False) if h}
        for values in rows
        if any(v is not None and str(v).strip() for v in values)
    ]


def _cell(value: object) -> str:
    """A cell as text; a whole number Excel keeps as a float (13800000000.0) reads as the number people typed."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


def parse(rows: list[dict[str, str]], channel: str, mapping: dict[str, Any]) -> Parsed:
    missing = [mapping.get(f, f) for f in REQUIRED if rows and mapping.get(f, f) not in rows[0]]
    if missing:
        raise ImportFileError(f"文件缺少列：{'、'.join(missing)}（渠道 {channel} 的映射见 config/field_mapping.toml）")
    reason = lim.CHANNEL.problem(channel)
    if reason:
        raise ImportFileError(reason)
    result = Parsed()
    for external_id, numbered in _grouped(rows, mapping["external_id"]).items():
        try:
            result.commands.append(_order(channel, external_id, numbered, mapping))
        except ValueError as err:
            result.problems.append(str(err))
    return result


def _grouped(rows: list[dict[str, str]], column: str) -> dict[str, list[tuple[int, dict[str, str]]]]:
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        groups.setdefault(row.get(column, ""), []).append((number, row))
    return groups


def _order(channel: str, external_id: str, numbered: list[tuple[int, dict[str, str]]], m: dict[str, Any]) -> c.CreateOrder:
    first_no, first = numbered[0]
    if not external_id:
        raise ValueError(f"第 {first_no} 行：缺少{m['external_id']}。")
    _limited(first_no, lim.ORDER_LINES.problem(len(numbered)))
    lines = tuple(_line(no, row, m) for no, row in numbered)
    value = _getter(first, m)
    paid_values = set(m.get("paid_values", []))
    return c.CreateOrder(
        channel=channel, external_id=_checked(first_no, lim.EXTERNAL_ID, external_id),
        customer_id=_checked(first_no, lim.CUSTOMER_ID, value("customer_id") or external_id),
        customer_name=_checked(first_no, lim.CUSTOMER_NAME, value("customer_name")),
        customer_phone=_checked(first_no, lim.PHONE, value("customer_phone"), empty_ok=True),
        address=_checked(first_no, lim.ADDRESS, _required(first_no, value("address"), m["address"])),
        store=_checked(first_no, lim.STORE, value("store"), empty_ok=True) or None,
        paid=(value("paid") in paid_values) if "paid" in m else True, lines=lines, by="cli", via="import",
    )


def _line(no: int, row: dict[str, str], m: dict[str, Any]) -> c.LineInput:
    value = _getter(row, m)
    sku = _checked(no, lim.SKU, _required(no, value("sku"), m["sku"]))
    try:
        qty = Decimal(value("qty"))
        price = Decimal(value("unit_price").replace("¥", "").replace(",", ""))
    except (InvalidOperation, ValueError):
        qty = price = Decimal("NaN")
    if not (qty.is_finite() and price.is_finite()):
        raise ValueError(f"第 {no} 行：数量或单价不是数字（{value('qty')} / {value('unit_price')}）。")
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
        raise ValueError(f"第 {no} 行：{reason}")


def _getter(row: dict[str, str], m: dict[str, Any]) -> Any:
    return lambda name: row.get(m.get(name, ""), "").strip() if name in m else ""


def _required(no: int, value: str, column: str) -> str:
    if not value:
        raise ValueError(f"第 {no} 行：缺少{column}。")
    return value
