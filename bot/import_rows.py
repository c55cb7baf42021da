"""Reading an export file for `orderbot orders import`: CSV (UTF-8 or GBK) or XLSX, and the channel's column
mapping from config/field_mapping.toml.

Rows are read lazily and numbered as the spreadsheet numbers them (row 1 is the header; a blank row keeps
its number), so that "第 N 行" in a report is the row a person finds in Excel. A 100,000-row export is never
held as 100,000 dicts: the parser keeps what it has parsed, not the text.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAPPING_FILE = Path(__file__).resolve().parents[1] / "config" / "field_mapping.toml"
REQUIRED = ("external_id", "address", "sku", "qty", "unit_price")
# Optional columns naming the buyer (domain/customers.py CustomerKeys), each checked against its limit.
CUSTOMER_KEY_COLUMNS = {"openid": "OPENID", "unionid": "UNIONID", "member_card": "MEMBER_CARD",
                        "douyin_buyer": "PLATFORM_BUYER", "k3_customer": "PLATFORM_BUYER", "phone_index": "PLATFORM_BUYER"}


class ImportFileError(ValueError):
    """The file as a whole cannot be read; the message is for the person running the command."""


@dataclass
class Table:
    header: list[str]
    rows: Callable[[], Iterator[tuple[int, list[str]]]]  # (row number, cells), blank rows left out
    total: int | None  # data rows, for the progress bar (None: not known before reading)


def read_table(path: Path) -> Table:
    if not path.is_file():
        raise ImportFileError(f"找不到文件 {path}。")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx_table(path)
    if path.suffix.lower() == ".csv":
        return _csv_table(path)
    raise ImportFileError("只支持 .csv 和 .xlsx 文件。")


def load_mapping(channel: str | None, header: list[str], path: Path = MAPPING_FILE) -> tuple[str, dict[str, Any]]:
    """The channel's column mapping; without a channel, the one whose columns the file has."""
    mappings: dict[str, dict[str, Any]] = tomllib.loads(path.read_text(encoding="utf-8"))
    if channel is None:
        columns = set(header)
        fitting = [name for name, m in mappings.items() if all(m[f] in columns for f in REQUIRED)]
        if len(fitting) != 1:
            raise ImportFileError(f"认不出是哪个渠道的导出，请用 --channel 指定（可选：{'、'.join(mappings)}）。")
        channel = fitting[0]
    if channel not in mappings:
        raise ImportFileError(f"没有渠道“{channel}”的字段映射（可选：{'、'.join(mappings)}），请在 {path} 中添加。")
    return channel, dict(mappings[channel])


def _csv_table(path: Path) -> Table:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportFileError("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV。")
    del raw

    def records() -> Iterator[list[str]]:
        try:
            yield from csv.reader(io.StringIO(text))
        except csv.Error as err:  # e.g. a field over csv's size limit, or a stray quote in strict files
            raise ImportFileError(f"CSV 文件格式有误：{err}。") from None

    first = next(records(), [])
    header = [h.strip() for h in first]

    def rows() -> Iterator[tuple[int, list[str]]]:
        numbered = enumerate(records(), start=1)
        next(numbered, None)
        for number, cells in numbered:
            if any(cell.strip() for cell in cells):
                yield number, cells

    return Table(header, rows, sum(1 for _ in rows()))


def _xlsx_table(path: Path) -> Table:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
        sheet = book.worksheets[0]
    except Exception as err:  # openpyxl raises many kinds for a damaged file
        raise ImportFileError(f"无法读取 Excel 文件：{type(err).__name__}") from err
    header = [_cell(h) for h in next(sheet.iter_rows(max_row=1, values_only=True), ())]

    def rows() -> Iterator[tuple[int, list[str]]]:
        for number, values in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2):
            cells = [_cell(v) for v in values]
            if any(cells):
                yield number, cells

    total = sheet.max_row - 1 if sheet.max_row else None  # from the sheet's dimension: a guess, for the bar
    return Table(header, rows, total)


def _cell(value: object) -> str:
    """A cell as text; a whole number Excel keeps as a float (13800000000.0) reads as the number people typed."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()
