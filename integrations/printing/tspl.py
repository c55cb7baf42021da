"""TSPL (TSC's label language, which most Chinese thermal printers speak: TSC, Gprinter, Xprinter, HPRT).

Followed (TSC "TSPL/TSPL2 Programming Language" manual): SIZE m mm,n mm; GAP; DIRECTION; REFERENCE; CLS;
TEXT x,y,"font",rotation,x-multiplication,y-multiplication,"content"; BARCODE x,y,"128",height,human readable,
rotation,narrow,wide,"content"; QRCODE x,y,ECC level,cell width,mode,rotation,"data"; BAR x,y,width,height;
PRINT sets,copies. Every command ends in CR LF. Chinese text uses the resident "TSS24.BF2" font (24 × 24 dots,
Simplified Chinese), whose bytes are GB2312/GBK: the whole job is encoded as GBK, and a character GBK has no code
for becomes "?". A double quote inside a string is written \\["] (the manual's escape), so no text ends a string
early; line breaks never reach a command (layout.clean).
"""

from __future__ import annotations

from domain.labels import LABEL_HEIGHT_MM, LABEL_WIDTH_MM, Label
from integrations.printing.layout import Barcode, Element, QrCode, Rule, Text, layout

FONT = "TSS24.BF2"
ENCODING = "gbk"


def quoted(text: str) -> str:
    return '"' + text.replace('"', '\\["]') + '"'


def command(element: Element) -> str:
    if isinstance(element, Text):
        s = element.scale
        return f"TEXT {element.x},{element.y},{quoted(FONT)},0,{s},{s},{quoted(element.text)}"
    if isinstance(element, Barcode):
        narrow = 3 if len(element.data) <= 14 else 2
        return f"BARCODE {element.x},{element.y},\"128\",{element.height},1,0,{narrow},{narrow},{quoted(element.data)}"
    if isinstance(element, QrCode):
        return f"QRCODE {element.x},{element.y},M,{element.cell},A,0,{quoted(element.data)}"
    if isinstance(element, Rule):
        return f"BAR {element.x},{element.y},{element.width},{element.height}"
    raise TypeError(f"no TSPL for {element!r}")


def render_tspl(label: Label, copy: int = 0) -> bytes:
    """The whole print job, GBK bytes, ready for the printer's TCP port 9100."""
    lines = [
        f"SIZE {LABEL_WIDTH_MM} mm,{LABEL_HEIGHT_MM} mm", "GAP 2 mm,0 mm", "DIRECTION 1", "REFERENCE 0,0", "CLS",
        *(command(element) for element in layout(label, copy)),
        "PRINT 1,1",
    ]
    return ("\r\n".join(lines) + "\r\n").encode(ENCODING, errors="replace")
