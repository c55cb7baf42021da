"""The chain's own WeChat mini-program: its login (jscode2session) and our session tokens for its customers.

orderbot is the mini-program's order backend. The app calls `wx.login`, sends the one-time code to
`POST /channels/miniprogram/login`, and gets our own signed, expiring session token; WeChat's session_key never
leaves this package and is not stored (orderbot decrypts no `wx.getUserInfo`/phone data, so it has no use for it).
"""

from integrations.channels.miniprogram.client import (
    LoginRefused,
    LoginUnavailable,
    MiniprogramClient,
    WxSession,
)
from integrations.channels.miniprogram.session import BadToken, SessionClaims, SessionSigner

__all__ = ["BadToken", "LoginRefused", "LoginUnavailable", "MiniprogramClient", "SessionClaims", "SessionSigner",
           "WxSession"]
