"""Cainiao's print component (菜鸟打印组件), the local service at the packing bench that prints Cainiao's encrypted
e-waybills: a WebSocket server (ws://host:13528; wss:// on 13529) speaking JSON commands.

Followed (Cainiao's "云打印交互协议", open.taobao.com docs articleId=106976, as reproduced in
https://www.codeprj.com/zh/blog/807e501.html and https://www.950288.xyz/blog/2025-05-23/cn-printer-websocket; and
the client in github gavin-hao/ec-print src/cainiao.ts): every request carries "cmd", "requestID" (unique per
request, echoed in the answer) and "version" "1.0". `print` carries a task {"taskID", "preview": false,
"printer" ("" = the default printer), "documents": [{"documentID", "contents": [...]}]}; for a Cainiao waybill a
content is the printData TMS_WAYBILL_GET returned ({"encryptedData", "signature", "templateURL", "ver"}), passed
untouched. The answer {"cmd": "print", "requestID", "taskID", "status": "success"|"failed", "msg"} says whether
the task was taken; then {"cmd": "notifyPrintResult", "taskID", "taskStatus": "rendered"|"printed"|"failed",
"printStatus": [{"documentID", "status", "msg"}]} says what became of it. The protocol advises one document per
task (fewer reprints), which is what we send.

Our reading of the outcome: an answer "failed" or a notify "failed" is PrinterTrouble (retried); no answer in the
send time-out is PrinterTrouble; "success" and then "printed" is done; "success" and no "printed" within
`notify_s` counts as printed (the component took the task; asking again could print it twice) and is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import aiohttp

from domain.labels import EncryptedPrint
from integrations.printing.transports import PrinterTrouble, PrintRefused

log = logging.getLogger(__name__)
ENCRYPTED_KEYS = ("encryptedData", "signature", "templateURL")


def encrypted_document(label: EncryptedPrint) -> dict[str, Any]:
    """A Cainiao waybill's document: its printData as the one content (PrintRefused if it is not Cainiao's)."""
    try:
        content = json.loads(label.print_data)
    except ValueError as err:
        raise PrintRefused(f"运单 {label.waybill} 的打印数据不是菜鸟面单数据（无法解析）") from err
    if not isinstance(content, dict) or not all(key in content for key in ENCRYPTED_KEYS):
        raise PrintRefused(f"运单 {label.waybill} 的打印数据缺少 encryptedData/signature/templateURL")
    return {"documentID": label.waybill, "contents": [content]}


def print_request(task_id: str, printer: str, documents: list[dict[str, Any]]) -> dict[str, Any]:
    return {"cmd": "print", "requestID": uuid.uuid4().hex, "version": "1.0",
            "task": {"taskID": task_id, "preview": False, "printer": printer, "documents": documents}}


class CainiaoPrintComponent:
    """One WebSocket connection per print task: send `print`, read its answer, wait for the task's notify."""

    def __init__(self, http: aiohttp.ClientSession, *, connect_s: float, send_s: float, notify_s: float) -> None:
        self._http = http
        self._connect_s, self._send_s, self._notify_s = connect_s, send_s, notify_s

    async def print(self, host: str, port: int, printer: str, task_id: str, documents: list[dict[str, Any]]) -> str:
        """The task's final status ("printed", or "accepted" when no notify came in time)."""
        where = f"cainiao://{host}:{port}"
        request = print_request(task_id, printer, documents)
        try:
            async with asyncio.timeout(self._connect_s):
                ws = await self._http.ws_connect(f"ws://{host}:{port}", autoping=True)
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            raise PrinterTrouble(f"菜鸟打印组件 {where} 连不上（组件未启动？）：{err or type(err).__name__}") from err
        try:
            async with ws:
                await ws.send_str(json.dumps(request, ensure_ascii=False))
                answer = await self._until(ws, self._send_s, lambda m: m.get("cmd") == "print"
                                           and str(m.get("requestID")) == request["requestID"])
                if answer is None:
                    raise PrinterTrouble(f"菜鸟打印组件 {where} 在 {self._send_s:g} 秒内没有回应打印请求（或关闭了连接）")
                if answer.get("status") != "success":
                    raise PrinterTrouble(f"菜鸟打印组件 {where} 拒绝打印：{answer.get('msg') or answer.get('status')}")
                notify = await self._until(ws, self._notify_s, lambda m: m.get("cmd") == "notifyPrintResult"
                                           and str(m.get("taskID")) == task_id
                                           and m.get("taskStatus") in ("printed", "failed"))
        except (aiohttp.ClientError, OSError) as err:
            raise PrinterTrouble(f"菜鸟打印组件 {where} 中断了连接：{err}") from err
        if notify is None:
            log.warning("cainiao print task %s taken by %s, no notifyPrintResult in %g s: counted as printed",
                        task_id, where, self._notify_s)
            return "accepted"
        if notify["taskStatus"] == "failed":
            why = "；".join(str(s.get("msg", "")) for s in notify.get("printStatus") or [] if s.get("msg"))
            raise PrinterTrouble(f"菜鸟打印组件 {where} 打印失败：{why or '未说明原因'}")
        return "printed"

    async def _until(self, ws: aiohttp.ClientWebSocketResponse, within_s: float,
                     wanted: Any) -> dict[str, Any] | None:
        """The first JSON message `wanted` accepts within `within_s`; None when none came in time or the
        connection closed (other messages are skipped)."""
        try:
            async with asyncio.timeout(within_s):
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    try:
                        data = json.loads(msg.data)
                    except ValueError:
                        continue
                    if isinstance(data, dict) and wanted(data):
                        return data
        except TimeoutError:
            return None
        return None  # the component closed the connection
