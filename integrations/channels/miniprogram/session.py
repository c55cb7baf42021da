"""Our own session token for a mini-program customer: signed (HMAC-SHA256), expiring, holding no secret.

Form: `<payload>.<mac>`, both base64url without padding; payload = compact JSON {"v": 1, "sub": openid,
"uid": unionid?, "iat": issued, "exp": expires} (epoch seconds). The MAC is over the payload *as sent* and is
compared as text, so a change to any character is refused — base64's slack in the last character's spare bits
cannot smuggle an equal-looking token. The token names the WeChat OpenID, not our customer number: the customer
is looked up from the key on each request, so a later merge of customers is followed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

VERSION = 1
MAX_TOKEN_CHARS = 1024


class BadToken(Exception):  # noqa: N818
    """The token is not ours, was changed, or has expired; `reason` is for the log only."""


@dataclass(frozen=True)
class SessionClaims:
    openid: str
    unionid: str
    issued_at: int
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SessionSigner:
    def __init__(self, secret: str, ttl_s: int) -> None:
        if not secret:
            raise ValueError("a session secret is required")
        self._key = hashlib.sha256(b"orderbot-miniprogram-session\0" + secret.encode()).digest()
        self.ttl_s = ttl_s

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, openid: str, unionid: str, now: int) -> tuple[str, int]:
        """(token, expires_at)."""
        claims: dict[str, object] = {"v": VERSION, "sub": openid, "iat": now, "exp": now + self.ttl_s}
        if unionid:
            claims["uid"] = unionid
        payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self._mac(payload)}", now + self.ttl_s

    def verify(self, token: str, now: int) -> SessionClaims:
        if len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise BadToken("malformed")
        payload, dot, mac = token.partition(".")
        if not dot or not payload or not mac:
            raise BadToken("malformed")
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise BadToken("bad signature")
        try:  # signed by us, so well formed unless the key was reused elsewhere; checked all the same
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            openid, unionid = claims["sub"], claims.get("uid", "")
            issued, expires = claims["iat"], claims["exp"]
        except (ValueError, binascii.Error, KeyError, TypeError):
            raise BadToken("unreadable payload") from None
        if claims.get("v") != VERSION or not isinstance(openid, str) or not openid or not isinstance(unionid, str):
            raise BadToken("unknown claims")
        if not isinstance(expires, int) or not isinstance(issued, int) or now >= expires:
            raise BadToken("expired")
        return SessionClaims(openid, unionid, issued, expires)
