"""In-process fake of WeChat's mini-program login check, GET /sns/jscode2session, in WeChat's wire format.

A test (or the demo) hands out codes as `wx.login` would: `fake.issue_code("o-openid", unionid=…)` returns a fresh
code; each code works once (a second use answers 40163, an unknown one 40029), as WeChat's do. Every call checks
appid, secret and grant_type (40013 / 40125 / 40002 otherwise). Failures are queued with `fail_next(errcode=…)`
(e.g. -1 busy, 45011 rate limit) or `fail_next(status=…)`; `stall_next` delays the answer (time-outs). Answers go
out as text/plain JSON, as WeChat's often do.
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from typing import Any

from aiohttp import web

from integrations.fakes.server import ErrorOrStatus, FakeServer

PATH = "/sns/jscode2session"
_MSG = {-1: "system error", 40002: "invalid grant_type", 40013: "invalid appid", 40029: "invalid code",
        40125: "invalid appsecret", 40163: "code been used", 40226: "code blocked",
        45011: "api minute-quota reach limit  mustslower  retry next minute"}


def _answer(data: dict[str, Any]) -> web.Response:
    return web.Response(text=json.dumps(data), content_type="text/plain")


def _error(errcode: int) -> web.Response:
    return _answer({"errcode": errcode, "errmsg": f"{_MSG.get(errcode, 'error')}, rid: {secrets.token_hex(4)}"})


class FakeWeChatMini(FakeServer):
    def __init__(self, app_id: str = "wx0123456789abcdef", secret: str = "fake-mini-secret") -> None:
        self.app_id, self.secret = app_id, secret
        self._codes: dict[str, tuple[str, str]] = {}  # code -> (openid, unionid), until used
        self._used: set[str] = set()
        self.calls: list[dict[str, str]] = []  # query of every call (secret included: tests check it was sent)
        self.sessions_issued = 0
        self._path_failures: dict[str, deque[ErrorOrStatus]] = {}
        self._path_stalls: dict[str, deque[float]] = {}
        self.app = web.Application(middlewares=[self.injected_trouble])
        self.app.router.add_get(PATH, self._jscode2session)

    # ---- what tests tell it

    def issue_code(self, openid: str, *, unionid: str = "") -> str:
        """A code as wx.login gives the app for the user `openid` (once usable)."""
        code = secrets.token_hex(16)
        self._codes[code] = (openid, unionid)
        return code

    def fail_next(self, *, errcode: int | None = None, status: int | None = None, times: int = 1) -> None:
        failure = ErrorOrStatus(errcode, status, _error, "fake wechat failure")
        self._path_failures.setdefault(PATH, deque()).extend(failure for _ in range(times))

    def stall_next(self, seconds: float, times: int = 1) -> None:
        self._queue_stall(seconds, times, PATH)

    # ---- the API

    async def _jscode2session(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.calls.append(query)
        if query.get("appid") != self.app_id:
            return _error(40013)
        if query.get("secret") != self.secret:
            return _error(40125)
        if query.get("grant_type") != "authorization_code":
            return _error(40002)
        code = query.get("js_code", "")
        if code in self._used:
            return _error(40163)
        if code not in self._codes:
            return _error(40029)
        openid, unionid = self._codes.pop(code)
        self._used.add(code)
        self.sessions_issued += 1
        data = {"openid": openid, "session_key": secrets.token_urlsafe(16)}
        if unionid:
            data["unionid"] = unionid
        return _answer(data)
