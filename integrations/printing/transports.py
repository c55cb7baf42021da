"""Where a store's labels go, read from its printer URL, and the two plain ways there: a raw job over TCP (the
JetDirect-style port 9100 that TSPL and ZPL printers listen on) and a PDF file in a folder.

Raw TCP has no answer of its own: the job is written, our side is shut (FIN), and the printer's closing of its own
side says it took the whole job. A printer that refuses or resets the connection failed; one that takes the
connection but neither reads nor closes within the send time-out is stalled, and the job is tried again — so a
printer that had in fact printed may print the label twice (at-least-once, like every outbox channel: a second
label of the same waybill is thrown away, a missing one holds up the parcel).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

SCHEMES = ("tspl", "zpl", "cainiao", "pdf")
DEFAULT_PORTS = {"tspl": 9100, "zpl": 9100, "cainiao": 13528}


class PrinterTrouble(Exception):
    """The printer could not take the job now (off, unplugged, stalled, out of paper): try again later.
    The message is in Chinese: it reaches the warehouse staff as it is when the print is given up."""


class PrintRefused(Exception):
    """This job can never print on this printer (a Cainiao waybill on a TSPL printer, print data that is not
    Cainiao's JSON): the row dies at once, and the staff are told why."""


@dataclass(frozen=True)
class PrinterAddress:
    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""  # pdf://: the folder
    printer: str = ""  # cainiao://host:port?printer=NAME: the printer the component prints on ("" = its default)

    @classmethod
    def parse(cls, url: str) -> PrinterAddress:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise ValueError(f"unknown printer URL scheme {scheme!r} (tspl, zpl, cainiao, pdf)")
        if scheme == "pdf":
            folder = unquote(parts.netloc + parts.path)
            if not folder:
                raise ValueError("pdf:// needs a folder, e.g. pdf://var/labels or pdf:///srv/labels")
            return cls(scheme, path=folder)
        if not parts.hostname:
            raise ValueError(f"{scheme}:// needs a host, e.g. {scheme}://192.168.1.50:{DEFAULT_PORTS[scheme]}")
        printer = parse_qs(parts.query).get("printer", [""])[0]
        return cls(scheme, parts.hostname, parts.port or DEFAULT_PORTS[scheme], printer=printer)

    def __str__(self) -> str:
        return f"pdf://{self.path}" if self.scheme == "pdf" else f"{self.scheme}://{self.host}:{self.port}"


async def send_raw(host: str, port: int, job: bytes, *, connect_s: float, send_s: float) -> None:
    """One job to a raw TCP printer; PrinterTrouble (in words the staff understand) when it did not take it."""
    where = f"{host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), connect_s)
    except TimeoutError as err:
        raise PrinterTrouble(f"打印机 {where} 在 {connect_s:g} 秒内没有接受连接（未开机或网络不通）") from err
    except OSError as err:
        raise PrinterTrouble(f"打印机 {where} 连接失败（未开机或地址不对）：{err.strerror or err}") from err
    try:
        async with asyncio.timeout(send_s):
            writer.write(job)
            await writer.drain()
            writer.write_eof()
            while await reader.read(4096):  # a printer may answer status bytes; its close means "taken"
                pass
    except TimeoutError as err:
        raise PrinterTrouble(f"打印机 {where} 在 {send_s:g} 秒内没有收完打印任务（卡纸、缺纸或忙）") from err
    except OSError as err:
        raise PrinterTrouble(f"打印机 {where} 中断了连接：{err.strerror or err}") from err
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


def write_pdf(folder: str, name: str, data: bytes) -> Path:
    """The label as <folder>/<name>.pdf, written whole or not at all (a temporary file renamed into place)."""
    target_dir = Path(folder)
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / f"{name}.pdf"
        partial = target_dir / f".{name}.pdf.part"
        partial.write_bytes(data)
        partial.replace(target)
    except OSError as err:
        raise PrinterTrouble(f"无法写入面单文件夹 {folder}：{err.strerror or err}") from err
    return target
