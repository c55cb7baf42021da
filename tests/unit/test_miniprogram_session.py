"""The mini-program's session token: what was issued verifies until it expires; any change to it is refused."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.channels.miniprogram.session import BadToken, SessionSigner

SIGNER = SessionSigner("unit-session-secret", ttl_s=3600)
NOW = 1_740_000_000
ids = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=40)
chars = st.characters(codec="utf-8")


@given(openid=ids, unionid=st.one_of(st.just(""), ids))
def test_an_issued_token_verifies_until_it_expires(openid: str, unionid: str) -> None:
    token, expires = SIGNER.issue(openid, unionid, NOW)
    claims = SIGNER.verify(token, NOW + 3599)
    assert (claims.openid, claims.unionid, claims.expires_at) == (openid, unionid, expires)
    with pytest.raises(BadToken, match="expired"):
        SIGNER.verify(token, expires)


@given(openid=ids, data=st.data())
def test_any_change_is_refused(openid: str, data: st.DataObject) -> None:
    token, _ = SIGNER.issue(openid, "", NOW)
    at = data.draw(st.integers(0, len(token)))
    kind = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
    if kind == "replace" and at < len(token):
        char = data.draw(chars.filter(lambda x: x != token[at]))
        changed = token[:at] + char + token[at + 1:]
    elif kind == "delete" and at < len(token):
        changed = token[:at] + token[at + 1:]
    elif kind == "truncate" and at < len(token):
        changed = token[:at]
    else:
        changed = token[:at] + data.draw(chars) + token[at:]
    assert changed != token
    with pytest.raises(BadToken):
        SIGNER.verify(changed, NOW)


@given(st.text(max_size=300))
def test_noise_never_verifies(text: str) -> None:
    with pytest.raises(BadToken):
        SIGNER.verify(text, NOW)


def test_another_secret_or_a_payload_re_signed_by_nobody_is_refused() -> None:
    token, _ = SIGNER.issue("o-1", "", NOW)
    with pytest.raises(BadToken):
        SessionSigner("another-secret", 3600).verify(token, NOW)
    other, _ = SIGNER.issue("o-2", "", NOW)
    with pytest.raises(BadToken):  # one customer's payload with another's MAC
        SIGNER.verify(f"{other.split('.')[0]}.{token.split('.')[1]}", NOW)
