"""In-process fake of Cainiao's print component (菜鸟打印组件): a WebSocket server speaking its JSON protocol
(see integrations/printing/cainiao.py for the source).

`print` tasks are checked like the component does (cmd, requestID, version "1.0", task.taskID, task.documents
with documentID and contents) and recorded in `tasks` (the request as received); the answer echoes requestID with
status "success", then a notifyPrintResult "rendered" and "printed" for the task. `getPrinters` names one printer.
Trouble on demand: `fail_next(msg)` answers the print request "failed" (e.g. 无效的打印机), `fail_print_next(msg)`
takes the task but notifies taskStatus "failed", `silent_next()` takes the request and never answers.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from aiohttp import WSMsgType, web

from integrations.fakes.server import FakeServer

PRINTER = "菜鸟模板打印机"


class FakePrintComponent(FakeServer):
    def __init__(self) -> None:
        self.tasks: list[dict[str, Any]] = []
        self.refusals: list[str] = []
        self._trouble: deque[tuple[str, str]] = deque()
        self._path_failures, self._path_stalls = {}, {}
        self.app = web.Application(middlewares=[self.injected_trouble])
        self.app.router.add_get("/", self._socket)

    @property
    def url(self) -> str:
        return "cainiao" + self.base_url.removeprefix("http")

    def fail_next(self, msg: str = "无效的打印机") -> None:
        self._trouble.append(("answer", msg))

    def fail_print_next(self, msg: str = "打印机缺纸") -> None:
        self._trouble.append(("notify", msg))

    def silent_next(self) -> None:
        self._trouble.append(("silent", ""))

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except ValueError:
                self.refusals.append("not JSON")
                continue
            for answer in self._answer(data):
                await ws.send_str(json.dumps(answer, ensure_ascii=False))
        return ws

    def _answer(self, data: Any) -> list[dict[str, Any]]:
        head = {"cmd": data.get("cmd"), "requestID": data.get("requestID")} if isinstance(data, dict) else {}
        problem = _problem(data)
        if problem:
            self.refusals.append(problem)
            return [{**head, "status": "failed", "msg": problem}]
        if data["cmd"] == "getPrinters":
            return [{**head, "status": "success", "defaultPrinter": PRINTER,
                     "printers": [{"name": PRINTER, "status": "enable"}]}]
        task = data["task"]
        trouble, msg = self._trouble.popleft() if self._trouble else ("", "")
        if trouble == "silent":
            return []
        if trouble == "answer":
            return [{**head, "taskID": task["taskID"], "status": "failed", "msg": msg}]
        printer = task.get("printer") or PRINTER
        statuses = [{"documentID": d["documentID"], "status": "failed" if trouble else "success", "msg": msg,
                     "detail": ""} for d in task["documents"]]
        notify = {"cmd": "notifyPrintResult", "printer": printer, "taskID": task["taskID"]}
        if trouble == "notify":
            return [{**head, "taskID": task["taskID"], "status": "success", "msg": ""},
                    {**notify, "taskStatus": "failed", "printStatus": statuses}]
        self.tasks.append(data)
        return [{**head, "taskID": task["taskID"], "status": "success", "msg": ""},
                {**notify, "taskStatus": "rendered", "printStatus": statuses},
                {**notify, "taskStatus": "printed", "printStatus": statuses}]


def _problem(data: Any) -> str:
    if not isinstance(data, dict) or not data.get("cmd") or not data.get("requestID"):
        return "缺少 cmd 或 requestID"
    if data.get("version") != "1.0":
        return "不支持的协议版本"
    if data["cmd"] == "getPrinters":
        return ""
    if data["cmd"] != "print":
        return f"未知命令 {data['cmd']}"
    task = data.get("task")
    if not isinstance(task, dict) or not task.get("taskID") or not isinstance(task.get("documents"), list):
        return "task 缺少 taskID 或 documents"
    for doc in task["documents"]:
        if not isinstance(doc, dict) or not doc.get("documentID") or not isinstance(doc.get("contents"), list):
            return "document 缺少 documentID 或 contents"
    return ""
