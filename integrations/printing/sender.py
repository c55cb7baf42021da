"""Outbox channel "print": a `PrintLabel` row (recipient = the store code, payload {"copy", "label"}) rendered for
the store's printer and sent there.

A store with no printer: the row is set aside as "unconfigured" (on /metrics as orderbot_outbox_rows
{channel="print",status="unconfigured"}) and the store's warehouse staff are told once. A printer that cannot take
the job now is tried again with the dispatcher's back-off (as RecipientTrouble: one store's printer being off
does not open the channel's breaker for every store), but only for `window_s` after the row was committed (the
bench is waiting for the label: minutes, not the hours a chat message may wait); then the row dies with the printer's
own error, and the dead-row hook (dead.py) gives the store's warehouse staff a task card with the `重打` hint.
A job that can never print there (a Cainiao waybill on a TSPL printer, an own label on a Cainiao print component)
dies at once, saying why.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from domain.clock import utcnow
from domain.labels import EncryptedPrint, Label
from domain.outbox_systems import label_from_data
from integrations.delivery.rows import OutboxRow, PermanentDelivery, RecipientTrouble, SetAside
from integrations.delivery.set_aside import UNCONFIGURED
from integrations.printing.cainiao import CainiaoPrintComponent, encrypted_document
from integrations.printing.transports import (
    PrinterAddress,
    PrinterTrouble,
    PrintRefused,
    send_raw,
    write_pdf,
)
from integrations.printing.tspl import render_tspl
from integrations.printing.zpl import render_zpl

log = logging.getLogger(__name__)

CHANNEL = "print"
NOT_CONFIGURED = "not configured: no printer for store {store} (PRINTING__PRINTERS)"
RAW_RENDERERS = {"tspl": render_tspl, "zpl": render_zpl}
_FILE_NAME = re.compile(r"[^0-9A-Za-z_-]")

NoPrinter = Callable[[str], Awaitable[None]]


class PrintSender:
    def __init__(
        self, printers: Mapping[str, str], *, cainiao: CainiaoPrintComponent | None = None,
        connect_s: float = 3.0, send_s: float = 10.0, window_s: float = 600.0,
        no_printer: NoPrinter | None = None, clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._printers = {store: PrinterAddress.parse(url) for store, url in printers.items()}
        self._cainiao = cainiao
        self._connect_s, self._send_s = connect_s, send_s
        self._window = timedelta(seconds=window_s)
        self._no_printer = no_printer
        self._clock = clock

    def printer_of(self, store: str) -> PrinterAddress | None:
        return self._printers.get(store)

    async def deliver(self, row: OutboxRow) -> None:
        store = row.recipient
        printer = self._printers.get(store)
        if printer is None:
            if self._no_printer is not None:
                await self._no_printer(store)
            raise SetAside(UNCONFIGURED, NOT_CONFIGURED.format(store=store))
        label = label_from_data(row.payload["label"])
        copy = int(row.payload.get("copy") or 0)
        try:
            outcome = await self._print(printer, label, copy, row.id)
        except PrintRefused as refused:
            log.warning("print row %s (order %s) refused by %s: %s", row.id, label.order_no, printer, refused)
            raise PermanentDelivery(str(refused)) from refused
        except PrinterTrouble as trouble:
            attempts = row.attempts + 1
            if self._clock() >= row.created_at + self._window:
                minutes = self._window.total_seconds() / 60
                raise PermanentDelivery(f"{minutes:g} 分钟内试了 {attempts} 次仍未打印：{trouble}") from trouble
            log.info("print row %s (order %s) not printed yet, attempt %d: %s", row.id, label.order_no, attempts,
                     trouble)
            raise RecipientTrouble(str(trouble)) from trouble  # one store's printer: other stores print on
        log.info("label of order %s (waybill %s, copy %d) %s at %s", label.order_no, label.waybill, copy, outcome,
                 printer)

    async def _print(self, printer: PrinterAddress, label: Label | EncryptedPrint, copy: int, row_id: int) -> str:
        if printer.scheme == "cainiao":
            if not isinstance(label, EncryptedPrint):
                raise PrintRefused(f"门店打印机 {printer} 是菜鸟打印组件，只能打印菜鸟电子面单；"
                                   f"本单（{label.courier_name}）的面单需要 tspl://、zpl:// 或 pdf:// 打印机")
            if self._cainiao is None:
                raise PrinterTrouble("菜鸟打印组件的连接未就绪")
            task_id = f"{label.order_no}-{label.waybill}-{copy}-{row_id}"
            return await self._cainiao.print(printer.host, printer.port, printer.printer, task_id,
                                             [encrypted_document(label)])
        if isinstance(label, EncryptedPrint):
            raise PrintRefused(f"运单 {label.waybill} 是菜鸟加密面单，只能由菜鸟打印组件（cainiao://）打印，"
                               f"门店打印机是 {printer}")
        if printer.scheme == "pdf":
            # imported here: reportlab costs ~10 MiB of memory, and only pdf:// printers use it
            from integrations.printing.pdf import render_pdf

            name = _FILE_NAME.sub("_", f"{label.order_no}_{label.waybill}_{copy}")
            data = await asyncio.to_thread(render_pdf, label, copy)
            path = await asyncio.to_thread(write_pdf, printer.path, name, data)
            return f"written to {path.name}"
        job = RAW_RENDERERS[printer.scheme](label, copy)
        await send_raw(printer.host, printer.port, job, connect_s=self._connect_s, send_s=self._send_s)
        return f"printed ({len(job)} bytes)"
