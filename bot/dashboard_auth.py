"""Signed dashboard tokens: the short-lived link `概况` sends, and the session cookie it is exchanged for.

A token is `base64url(purpose|userid|expiry).base64url(HMAC-SHA256(secret, that))`, with the dashboard's own
secret (DASHBOARD__SECRET, never the API token). The purpose keeps a link from being used as a cookie and back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

LINK, SESSION = "link", "session"
MAX_TOKEN_CHARS = 512


class TokenRefused(Exception):
    def __init__(self, why: str) -> None:  # forged | expired
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class DashboardSigner:
    secret: bytes

    def sign(self, purpose: str, userid: str, expires: datetime) -> str:
        payload = f"{purpose}|{userid}|{int(expires.timestamp())}".encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, purpose: str, token: str, now: datetime) -> str:
        """The userid the token was issued to; TokenRefused('forged') for anything we did not sign for this
        purpose, TokenRefused('expired') for a genuine one past its time."""
        if not self.secret or not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise TokenRefused("forged")
        body, mac = token.split(".")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError) as err:
            raise TokenRefused("forged") from err
        if not hmac.compare_digest(given, self._mac(payload)):
            raise TokenRefused("forged")
        kind, rest = payload.decode().split("|", 1)
        userid, expiry = rest.rsplit("|", 1)
        if kind != purpose:
            raise TokenRefused("forged")
        if datetime.fromtimestamp(int(expiry), UTC) <= now:
            raise TokenRefused("expired")
        return userid

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, payload, hashlib.sha256).digest()


def link(signer: DashboardSigner, public_url: str, userid: str, now: datetime, minutes: int) -> str:
    token = signer.sign(LINK, userid, now + timedelta(minutes=minutes))
    return f"{public_url.rstrip('/')}/dashboard?t={quote(token)}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
