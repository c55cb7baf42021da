"""K3 Cloud WebAPI authentication as it goes over the wire: the signed headers of the current WebAPI SDK and the
LoginByAppSecret session.

Read from kingdee-cdp-webapi-sdk 8.2.0 (PyPI; core/webapi_client.py BuildHeader, util/hmac_util.py,
util/encode_util.py) and the Java SDK's ConstDefine (X-Api-*, X-Kd-*, kdservice-sessionid):
- the AppID of a WebAPI application is `<clientid>_<encoded client secret>`; the client secret is the encoded
  part, base64-decoded, XOR-ed with the ROT13 of a fixed 32-character code (the SDK's default, replaced by
  `x-kdapi-secpwd` when configured), base64-encoded again;
- X-Api-Signature = base64(hex(HMAC-SHA256(client secret, "POST\\n" + url-encoded path (every "/" as %2F) +
  "\\n\\nx-api-nonce:" + nonce + "\\nx-api-timestamp:" + timestamp + "\\n")));
- X-Kd-Appdata = base64("acctid,username,lcid,orgnum"); X-Kd-Signature = base64(hex(HMAC-SHA256(app secret,
  AppID + that same plain text))).
The SDK sends its timestamp (seconds) as the nonce too; we do the same.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

SDK_XOR_CODE = "0054s397p6234378o09pn7q3r5qropr7"  # encode_util.generate_code without its random filler digits
SIGNED_HEADERS = "x-api-timestamp,x-api-nonce"
SESSION_COOKIE = "kdservice-sessionid"
LOGIN_SERVICE = "Kingdee.BOS.WebApi.ServicesStub.AuthService.LoginByAppSecret"


def hmac_b64(content: str, key: str) -> str:
    """The SDK's HmacSHA256: the hex digest, base64-encoded (not the raw digest)."""
    digest = hmac.new(key.encode(), content.encode(), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode()).decode()


def decode_app_secret(encoded: str, xor_code: str = SDK_XOR_CODE) -> str:
    """The client secret hidden in the AppID's second part ('' when it is not 32 base64 characters, as the SDK)."""
    if len(encoded) != 32:
        return ""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return ""
    pad = codecs.encode(xor_code, "rot13").encode()
    return base64.b64encode(bytes(b ^ pad[i] for i, b in enumerate(raw))).decode()


encode_app_secret = decode_app_secret  # XOR both ways: what a K3 administrator's console hands out, for the fake


def signed_path(url: str) -> str:
    return quote(urlsplit(url).path, safe="")


def api_signature(url: str, nonce: str, timestamp: str, client_secret: str) -> str:
    text = f"POST\n{signed_path(url)}\n\nx-api-nonce:{nonce}\nx-api-timestamp:{timestamp}\n"
    return hmac_b64(text, client_secret)


@dataclass(frozen=True)
class Identity:
    acct_id: str
    username: str
    app_id: str
    app_secret: str
    lcid: int = 2052
    org_num: int = 0

    @property
    def app_data(self) -> str:
        return f"{self.acct_id},{self.username},{self.lcid},{self.org_num}"


def signed_headers(url: str, who: Identity, now: float, xor_code: str = SDK_XOR_CODE) -> dict[str, str]:
    """The headers that authenticate one request by themselves (no login call)."""
    client_id, _, encoded = who.app_id.partition("_")
    client_secret = decode_app_secret(encoded, xor_code) if encoded else ""
    stamp = str(int(now))
    return {
        "X-Api-ClientID": client_id if encoded else "",
        "X-Api-Auth-Version": "2.0",
        "x-api-timestamp": stamp,
        "x-api-nonce": stamp,
        "x-api-signheaders": SIGNED_HEADERS,
        "X-Api-Signature": api_signature(url, stamp, stamp, client_secret),
        "X-Kd-Appkey": who.app_id,
        "X-Kd-Appdata": base64.b64encode(who.app_data.encode()).decode(),
        "X-Kd-Signature": hmac_b64(who.app_id + who.app_data, who.app_secret),
    }


def login_body(who: Identity) -> dict[str, object]:
    """AuthService.LoginByAppSecret's positional parameters: acctid, username, appid, appsecret, lcid."""
    return {"parameters": [who.acct_id, who.username, who.app_id, who.app_secret, who.lcid]}
