"""Douyin shop (抖店) signatures: the push's `event-sign` and the open API's `sign`.

Both follow the official SDK (doudian sdk_golang, as published in zsmhub/doudian-sdk):
- push, message/doudian_sign.go `VerifySign`: md5(app_key + raw body + app_secret), lowercase hex;
- API, utils/sign_util.go `Sign`: hmac-sha256 keyed with the secret over
  secret + "app_key"{key} "method"{method} "param_json"{json} "timestamp"{ts} "v2" + secret, hex;
  param_json is the parameters re-serialised with sorted keys, no spaces, HTML not escaped (`utils.Marshal`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

API_VERSION = "2"
SIGN_METHOD = "hmac-sha256"


def push_sign(app_key: str, body: bytes, app_secret: str) -> str:
    return hashlib.md5(app_key.encode() + body + app_secret.encode()).hexdigest()


def push_sign_ok(app_key: str, body: bytes, app_secret: str, event_sign: str) -> bool:
    return hmac.compare_digest(push_sign(app_key, body, app_secret), event_sign.strip().lower())


def param_json(params: dict[str, Any]) -> str:
    """The SDK's Marshal: keys sorted, no spaces, non-ASCII as is."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def api_sign(app_key: str, app_secret: str, method: str, params_json: str, timestamp: int | str) -> str:
    pattern = f"app_key{app_key}method{method}param_json{params_json}timestamp{timestamp}v{API_VERSION}"
    text = f"{app_secret}{pattern}{app_secret}"
    return hmac.new(app_secret.encode(), text.encode(), hashlib.sha256).hexdigest()
