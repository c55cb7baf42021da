"""How a webhook delivery is signed, and how a subscriber checks it (the README's "Order event bus" says the same).

    X-Orderbot-Timestamp: 1760000000          (Unix seconds when this attempt was sent)
    X-Orderbot-Signature: v1=<hex>            (HMAC-SHA256, key = the subscriber's secret,
                                               message = timestamp + "." + the raw body bytes)

The timestamp is inside the signed message, so an old delivery replayed later fails the subscriber's
window check; the body is signed byte for byte, so verify before parsing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Orderbot-Timestamp"
SIGNATURE_HEADER = "X-Orderbot-Signature"
EVENT_ID_HEADER = "X-Orderbot-Event-Id"
EVENT_TYPE_HEADER = "X-Orderbot-Event-Type"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float,
           tolerance_s: float = DEFAULT_TOLERANCE_S) -> bool:
    """True if the body was signed with `secret` within `tolerance_s` of `now` (header names case-blind)."""
    lower = {name.lower(): value for name, value in headers.items()}
    raw_ts = lower.get(TIMESTAMP_HEADER.lower(), "")
    given = lower.get(SIGNATURE_HEADER.lower(), "")
    if not raw_ts.isdigit() or len(raw_ts) > 12:
        return False
    timestamp = int(raw_ts)
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), signature(secret, timestamp, body).encode())
