"""The same label as a one-page PDF, 100 × 150 mm, for any printer that takes PDF (pdf:// writes one per label).

reportlab draws it: the layout's dots become points, Chinese text uses reportlab's built-in CID font STSong-Light
(Adobe's Simplified Chinese font, named in the PDF and supplied by the viewer, so no font file ships), text made
only of ASCII (the waybill number) uses Helvetica, and reportlab's own Code 128 and QR widgets draw the codes.
"""

from __future__ import annotations

import io

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.code128 import Code128
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from domain.labels import LABEL_HEIGHT_MM, LABEL_WIDTH_MM, Label
from integrations.printing.layout import DOTS_PER_MM, Barcode, QrCode, Rule, Text, layout

CJK_FONT, LATIN_FONT = "STSong-Light", "Helvetica"
DOT = mm / DOTS_PER_MM  # points per printer dot
PAGE_W, PAGE_H = LABEL_WIDTH_MM * mm, LABEL_HEIGHT_MM * mm
_registered: list[bool] = []


def _font() -> None:
    if not _registered:  # registered on first use, not at import (nothing happens at import time)
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
        _registered.append(True)


def render_pdf(label: Label, copy: int = 0) -> bytes:
    _font()
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=(PAGE_W, PAGE_H), invariant=True)
    canvas.setTitle(f"{label.order_no} {label.waybill}")
    for element in layout(label, copy):
        if isinstance(element, Text):
            size = 24 * element.scale * DOT
            canvas.setFont(LATIN_FONT if element.text.isascii() else CJK_FONT, size)
            canvas.drawString(element.x * DOT, PAGE_H - element.y * DOT - size * 0.88, element.text)
        elif isinstance(element, Barcode):
            module = 3 if len(element.data) <= 14 else 2
            code = Code128(element.data, barHeight=element.height * DOT, barWidth=module * DOT, humanReadable=True,
                           quiet=False)
            code.drawOn(canvas, element.x * DOT, PAGE_H - (element.y + element.height) * DOT)
        elif isinstance(element, QrCode):
            side = 200 * DOT
            widget = QrCodeWidget(element.data, barWidth=side, barHeight=side, barBorder=0)
            drawing = Drawing(side, side)
            drawing.add(widget)
            renderPDF.draw(drawing, canvas, element.x * DOT, PAGE_H - element.y * DOT - side)
        elif isinstance(element, Rule):
            canvas.rect(element.x * DOT, PAGE_H - (element.y + element.height) * DOT, element.width * DOT,
                        element.height * DOT, stroke=0, fill=1)
    canvas.showPage()
    canvas.save()
    return out.getvalue()
