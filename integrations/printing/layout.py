"""One 100 × 150 mm label at 203 dpi (8 dots a millimetre), laid out once as elements in printer dots; the TSPL,
ZPL and PDF writers only translate them, so every printer gets the same label.

Text is made safe here for all three: control characters (a newline would end a TSPL or ZPL command) become
spaces, and each line is wrapped and cut to what fits the width, counting a wide (CJK) character as two cells.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from domain.customers import masked_phone
from domain.labels import LABEL_HEIGHT_MM, LABEL_WIDTH_MM, Label

DOTS_PER_MM = 8  # 203 dpi
WIDTH, HEIGHT = LABEL_WIDTH_MM * DOTS_PER_MM, LABEL_HEIGHT_MM * DOTS_PER_MM  # 800 × 1200 dots
MARGIN = 24
CELL = 12  # dots one narrow character takes at scale 1 (a 24-dot font: wide characters take 24)
LINE = 30  # dots from one line of scale-1 text to the next
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
BARCODE_SAFE = re.compile(r"[^0-9A-Za-z-]")  # what Code 128 carries on every printer without an escape


@dataclass(frozen=True)
class Text:
    x: int
    y: int
    text: str
    scale: int = 1  # 1: 24-dot characters; 2 and 3 for the courier's name and the route mark


@dataclass(frozen=True)
class Barcode:
    x: int
    y: int
    data: str  # Code 128
    height: int


@dataclass(frozen=True)
class QrCode:
    x: int
    y: int
    data: str
    cell: int  # dots per module


@dataclass(frozen=True)
class Rule:
    """A filled box: the lines between the label's blocks."""

    x: int
    y: int
    width: int
    height: int


Element = Text | Barcode | QrCode | Rule


def clean(text: str) -> str:
    """One line of printable text: control characters and line breaks become spaces, runs of spaces one."""
    return " ".join(CONTROL.sub(" ", text).split())


def cells(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WFA" else 1 for ch in text)


def wrap(text: str, width_cells: int, max_lines: int) -> list[str]:
    """`text` cut into lines of at most `width_cells`; past `max_lines` the last line ends in "…"."""
    lines: list[str] = []
    current, used = "", 0
    for ch in clean(text):
        w = cells(ch)
        if used + w > width_cells:
            lines.append(current)
            current, used = "", 0
            if ch == " ":
                continue
        current += ch
        used += w
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and cells(last) + 2 > width_cells:
            last = last[:-1]
        lines = [*lines[: max_lines - 1], last + "…"]
    return lines


def fit(text: str, width_cells: int) -> str:
    return (wrap(text, width_cells, 1) or [""])[0]


def barcode_data(waybill: str) -> str:
    return BARCODE_SAFE.sub("", waybill)[:40] or "0"


def layout(label: Label, copy: int = 0) -> list[Element]:
    """The label's elements, top to bottom, within 800 × 1200 dots."""
    per_line = (WIDTH - 2 * MARGIN) // CELL  # 62 narrow cells at scale 1
    out: list[Element] = [Text(MARGIN, 20, fit(label.courier_name or label.courier, per_line // 2 - 6), 2)]
    if copy:
        out.append(Text(WIDTH - MARGIN - 4 * CELL * 2, 20, "补打", 2))
    if label.route_mark:
        out.append(Text(MARGIN, 84, fit(label.route_mark, per_line // 3), 3))
    out.append(Rule(0, 170, WIDTH, 3))
    out.append(Barcode(MARGIN + 40, 186, barcode_data(label.waybill), 110))
    out.append(Text(MARGIN, 338, fit(f"运单号 {label.waybill}", per_line // 2), 2))
    out.append(Rule(0, 394, WIDTH, 3))
    out += _party(label.receiver.name, label.receiver.phone, label.receiver.address, "收", 408, 3, per_line)
    out.append(Rule(0, 560, WIDTH, 2))
    out += _party(label.sender.name, label.sender.phone, label.sender.address, "寄", 574, 2, per_line)
    out.append(Rule(0, 690, WIDTH, 2))
    y = 704
    for line in wrap(f"品名：{label.items}" if label.items else "品名：见订单", per_line, 3):
        out.append(Text(MARGIN, y, line))
        y += LINE
    out.append(Rule(0, 800, WIDTH, 2))
    out.append(Text(MARGIN, 830, fit(f"订单号 {label.order_no}", per_line - 22)))
    if label.printed_at:
        out.append(Text(MARGIN, 870, fit(f"打印 {label.printed_at}", per_line - 22)))
    out.append(QrCode(WIDTH - MARGIN - 200, 820, clean(label.waybill)[:200] or "0", 7))
    return out


def _party(name: str, phone: str, address: str, mark: str, y: int, lines: int, per_line: int) -> list[Element]:
    head = fit(f"{mark} {name} {masked_phone(clean(phone))}", per_line // 2)
    out: list[Element] = [Text(MARGIN, y, head, 2)]
    y += 54
    for line in wrap(address, per_line, lines):
        out.append(Text(MARGIN, y, line))
        y += LINE
    return out
