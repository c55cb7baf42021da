"""WeChat's login check for a mini-program, auth.code2Session.

Wire format (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/user-login/code2Session.html, and
https://developers.weixin.qq.com/minigame/dev/api-backend/open-api/login/auth.code2Session.html):
  GET {API_BASE}/sns/jscode2session?appid=APPID&secret=SECRET&js_code=JSCODE&grant_type=authorization_code
  → {"openid": …, "session_key": …, "unionid": … (only when the app is bound to an Open Platform account),
     "errcode": 0, "errmsg": …}
  errcode: -1 system busy (try again later); 40029 invalid code; 45011 rate limit (100 a minute per user);
  40226 high-risk user, login blocked.
Assumptions, written down: a success may come without `errcode` at all (seen in the wild and in older docs), so a
missing errcode with an openid is a success; WeChat serves the JSON as text/plain at times, so the body is parsed
whatever its content type; 40163 ("code been used") is an invalid code too; 40013/40125 (bad appid/secret) are
our configuration, not the customer's fault.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import httpx

log = logging.getLogger(__name__)

BUSY, INVALID_CODE, CODE_USED, RATE_LIMITED, BLOCKED = -1, 40029, 40163, 45011, 40226
BAD_CREDENTIALS = (40013, 40125, 41002, 41004)  # invalid appid / secret, missing appid / secret


@dataclass(frozen=True)
class WxSession:
    """Who logged in. The session_key is deliberately not kept (see the package docstring)."""

    openid: str
    unionid: str = ""


class LoginRefused(Exception):  # noqa: N818 (a refusal, not a failure of ours)
    """WeChat refused the code: the customer must log in again (a new wx.login)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"jscode2session errcode {errcode}: {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg


class LoginUnavailable(Exception):  # noqa: N818
    """WeChat could not answer now (busy, rate limit, network, our credentials): try again later."""

    def __init__(self, reason: str, *, errcode: int | None = None) -> None:
        super().__init__(reason)
        self.errcode = errcode

    @property
    def rate_limited(self) -> bool:
        return self.errcode == RATE_LIMITED


class MiniprogramClient:
    def __init__(self, http: httpx.AsyncClient, *, api_base: str, app_id: str, secret: str) -> None:
        self._http, self._url = http, api_base.rstrip("/") + "/sns/jscode2session"
        self._app_id, self._secret = app_id, secret

    async def code2session(self, js_code: str) -> WxSession:
        params = {"appid": self._app_id, "secret": self._secret, "js_code": js_code,
                  "grant_type": "authorization_code"}
        try:  # an httpx error's text names the URL, and so the secret: only its type is logged
            response = await self._http.get(self._url, params=params)
        except httpx.HTTPError as err:
            raise LoginUnavailable(f"jscode2session unreachable ({type(err).__name__})") from None
        if response.status_code != 200:
            raise LoginUnavailable(f"jscode2session HTTP {response.status_code}")
        try:
            data = json.loads(response.content)
            errcode = int(data.get("errcode") or 0)
        except (ValueError, TypeError, AttributeError):
            raise LoginUnavailable("jscode2session answered no JSON object") from None
        errmsg = str(data.get("errmsg") or "")
        if errcode in (INVALID_CODE, CODE_USED, BLOCKED):
            raise LoginRefused(errcode, errmsg)
        if errcode in BAD_CREDENTIALS:
            log.error("miniprogram: WeChat refuses our APP_ID/SECRET (errcode %d)", errcode)
            raise LoginUnavailable(f"jscode2session errcode {errcode}", errcode=errcode)
        if errcode != 0:
            raise LoginUnavailable(f"jscode2session errcode {errcode}: {errmsg}", errcode=errcode)
        openid = data.get("openid")
        if not isinstance(openid, str) or not openid:
            raise LoginUnavailable("jscode2session answered without an openid")
        unionid = data.get("unionid")
        return WxSession(openid, unionid if isinstance(unionid, str) else "")
