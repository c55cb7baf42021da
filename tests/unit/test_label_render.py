"""Labels rendered for the packing bench: TSPL (GBK, TSS24.BF2, Code 128, QR), ZPL (^BC, ^BQ, UTF-8) and a PDF of
the same 100 × 150 mm label; any label, however odd its text, renders without breaking the command syntax."""

from __future__ import annotations

import base64
import re
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.labels import Label, Party
from integrations.printing.layout import CELL, WIDTH, Text, cells, layout
from integrations.printing.pdf import render_pdf
from integrations.printing.tspl import render_tspl
from integrations.printing.zpl import render_zpl

LABEL = Label(
    order_no="SO20261130001", waybill="YT9876543210", courier="YTO", courier_name="圆通速递",
    sender=Party("城东店", "02155550000", "上海市徐汇区漕溪北路1号"),
    receiver=Party("张三", "13812345678", "广东省深圳市南山区科技园南区深南大道10000号腾讯大厦"),
    items="刹车片×2；机油滤芯×1", route_mark="310-W01 02", printed_at="2026-11-30 10:42",
)

TSPL_LINE = re.compile(
    r'SIZE 100 mm,150 mm|GAP 2 mm,0 mm|DIRECTION 1|REFERENCE 0,0|CLS|PRINT 1,1'
    r'|BAR \d+,\d+,\d+,\d+'
    r'|TEXT \d+,\d+,"TSS24\.BF2",0,[123],[123],"(?:\\\["\]|[^"])*"'
    r'|BARCODE \d+,\d+,"128",\d+,1,0,[23],[23],"[0-9A-Za-z-]+"'
    r'|QRCODE \d+,\d+,M,\d+,A,0,"(?:\\\["\]|[^"])*"'
)
ZPL_LINE = re.compile(
    r"\^XA|\^CI28|\^CWJ,E:ANMDS\.TTF|\^PW800|\^LL1200|\^LH0,0|\^PQ1|\^XZ"
    r"|\^FO\d+,\d+(?:\^AJN,\d+,\d+\^FH_\^FD[^^~]*|\^BY[23]\^BCN,\d+,Y,N,N\^FD[0-9A-Za-z-]+"
    r"|\^BQN,2,\d+\^FH_\^FDQA,[^^~]*|\^GB\d+,\d+,\d+)\^FS"
)


def tspl_lines(job: bytes) -> list[str]:
    assert job.endswith(b"\r\n")
    return job.decode("gbk").split("\r\n")[:-1]


def test_tspl_sets_the_100_by_150_size_and_prints_chinese_in_gbk_with_the_tss24_font() -> None:
    job = render_tspl(LABEL)
    lines = tspl_lines(job)
    assert lines[0] == "SIZE 100 mm,150 mm"
    assert "CLS" in lines and lines[-1] == "PRINT 1,1"
    assert "张三".encode("gbk") in job and "张三".encode() not in job  # GBK bytes, not UTF-8
    assert 'TEXT 24,408,"TSS24.BF2",0,2,2,"收 张三 138****5678"' in lines  # the phone is printed masked
    assert any(line.startswith("TEXT") and "圆通速递" in line and ",2,2," in line for line in lines)
    assert any(line.startswith("TEXT") and "310-W01 02" in line and ",3,3," in line for line in lines)  # route mark large


def test_tspl_carries_the_waybill_as_code_128_text_and_qr() -> None:
    lines = tspl_lines(render_tspl(LABEL))
    [barcode] = [line for line in lines if line.startswith("BARCODE")]
    assert barcode.startswith("BARCODE 64,186,\"128\",") and barcode.endswith('"YT9876543210"')
    assert [line for line in lines if line.startswith("QRCODE")] == ['QRCODE 576,820,M,7,A,0,"YT9876543210"']
    assert any("运单号 YT9876543210" in line for line in lines)
    assert any("订单号 SO20261130001" in line for line in lines)
    assert "13812345678" not in "".join(lines)


def test_a_reprint_is_marked_on_the_label() -> None:
    assert "补打" not in render_tspl(LABEL).decode("gbk")
    assert "补打" in render_tspl(LABEL, copy=1).decode("gbk")


def test_zpl_has_code_128_and_qr_and_utf8_text_in_the_chinese_font() -> None:
    job = render_zpl(LABEL).decode("utf-8")
    assert job.startswith("^XA\n^CI28\n^CWJ,E:ANMDS.TTF\n^PW800\n^LL1200") and job.endswith("^XZ\n")
    assert "^BCN,110,Y,N,N^FDYT9876543210^FS" in job
    assert "^BQN,2,7^FH_^FDQA,YT9876543210^FS" in job
    assert "^AJN,48,48^FH_^FD收 张三 138****5678^FS" in job


def test_pdf_is_one_100_by_150_mm_page_with_the_waybill_as_text() -> None:
    pdf = render_pdf(LABEL)
    assert pdf.startswith(b"%PDF-")
    assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") + pdf.count(b"/Type /Page>") >= 1
    media = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert media is not None
    assert abs(float(media[1]) - 283.46) < 0.1 and abs(float(media[2]) - 425.2) < 0.1  # 100 × 150 mm in points
    assert b"/STSong-Light" in pdf  # the CJK CID font, no font file embedded
    shown = b"".join(page_streams(pdf))
    assert b"(YT9876543210) Tj" in shown  # drawn as text a reader can extract (Helvetica), under the Code 128


def page_streams(pdf: bytes) -> list[bytes]:
    """reportlab's streams are ASCII85 then Flate encoded: decoded here as a PDF reader would."""
    found = re.findall(rb"/Filter \[ /ASCII85Decode /FlateDecode \][^>]*>>\s*stream\r?\n(.*?)~>\s*endstream", pdf, re.S)
    return [zlib.decompress(base64.a85decode(data.replace(b"\n", b""))) for data in found]


names = st.text(max_size=80)
parties = st.builds(Party, names, st.text(max_size=30), st.text(max_size=400))
labels = st.builds(Label, st.text(max_size=40), st.text(max_size=60), st.text(max_size=20), names, parties, parties,
                   st.text(max_size=300), st.text(max_size=40), st.text(max_size=40))


@settings(max_examples=150, deadline=None)
@given(labels, st.integers(min_value=0, max_value=3))
def test_any_label_renders_and_keeps_the_command_syntax_and_the_width(label: Label, copy: int) -> None:
    for line in tspl_lines(render_tspl(label, copy)):
        assert TSPL_LINE.fullmatch(line), line
    zpl = render_zpl(label, copy).decode("utf-8")
    for line in zpl.split("\n")[:-1]:
        assert ZPL_LINE.fullmatch(line), line
    for element in layout(label, copy):
        if isinstance(element, Text):
            assert "\n" not in element.text and "\r" not in element.text
            assert element.x + cells(element.text) * CELL * element.scale <= WIDTH


@settings(max_examples=15, deadline=None)
@given(labels)
def test_any_label_makes_a_pdf(label: Label) -> None:
    assert render_pdf(label).startswith(b"%PDF-")
