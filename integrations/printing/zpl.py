"""ZPL II (Zebra's label language) for the same label.

Followed (Zebra "ZPL II Programming Guide"): ^XA … ^XZ a label; ^PW width and ^LL length in dots; ^FO x,y a field
origin; ^A font,height,width; ^FD data ^FS; ^BY module width; ^BC Code 128 (orientation, height, interpretation
line); ^BQ QR (^FD starts with the error-correction level and "A," for automatic input); ^GB a box (our rules);
^FH_ lets a field carry _hh hex bytes, so "^", "~" and "_" in a name cannot start a command.

Chinese: ^CI28 (text as UTF-8) with ^CW naming a Simplified Chinese TrueType font for the alias "J". UTF-8 is
chosen over a GB code page (^CI26) because it carries every character of a name or an address as it is, with no
lossy conversion; the font is Zebra's Andale Mono Simplified Chinese (E:ANMDS.TTF, Zebra's "Asian fonts" kit),
which must be on the printer — the resident fonts have no Chinese glyphs.
"""

from __future__ import annotations

from domain.labels import Label
from integrations.printing.layout import HEIGHT, WIDTH, Barcode, Element, QrCode, Rule, Text, layout

CHINESE_FONT = "E:ANMDS.TTF"
DOTS = 24  # the same 24-dot characters as TSPL's TSS24.BF2


def field(text: str) -> str:
    """^FH_ escapes for the characters that would start a command (and the escape character itself)."""
    return text.replace("_", "_5F").replace("^", "_5E").replace("~", "_7E")


def command(element: Element) -> str:
    if isinstance(element, Text):
        h = DOTS * element.scale
        return f"^FO{element.x},{element.y}^AJN,{h},{h}^FH_^FD{field(element.text)}^FS"
    if isinstance(element, Barcode):
        module = 3 if len(element.data) <= 14 else 2
        return f"^FO{element.x},{element.y}^BY{module}^BCN,{element.height},Y,N,N^FD{element.data}^FS"
    if isinstance(element, QrCode):
        return f"^FO{element.x},{element.y}^BQN,2,{element.cell}^FH_^FDQA,{field(element.data)}^FS"
    if isinstance(element, Rule):
        thickness = min(element.width, element.height)
        return f"^FO{element.x},{element.y}^GB{element.width},{element.height},{thickness}^FS"
    raise TypeError(f"no ZPL for {element!r}")


def render_zpl(label: Label, copy: int = 0) -> bytes:
    """The whole print job, UTF-8 bytes, ready for the printer's TCP port 9100."""
    lines = ["^XA", "^CI28", f"^CWJ,{CHINESE_FONT}", f"^PW{WIDTH}", f"^LL{HEIGHT}", "^LH0,0",
             *(command(element) for element in layout(label, copy)), "^PQ1", "^XZ"]
    return ("\n".join(lines) + "\n").encode("utf-8")
