"""Dashboard tokens: only what we signed, for its purpose, before its expiry, opens anything; any other text is
refused as forged and never raises anything else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.dashboard_auth import LINK, SESSION, DashboardSigner, TokenRefused
from domain.health import end_of_day, is_yellow

NOW = datetime(2026, 2, 6, 12, 0, tzinfo=UTC)
SIGNER = DashboardSigner(b"unit-test-secret")


def refused(token: str, purpose: str = LINK, signer: DashboardSigner = SIGNER, now: datetime = NOW) -> str:
    with pytest.raises(TokenRefused) as caught:
        signer.verify(purpose, token, now)
    return caught.value.why


def test_a_signed_link_names_its_user_until_it_expires() -> None:
    token = SIGNER.sign(LINK, "mgr|1", NOW + timedelta(minutes=15))
    assert SIGNER.verify(LINK, token, NOW + timedelta(minutes=14)) == "mgr|1"
    assert refused(token, now=NOW + timedelta(minutes=15)) == "expired"
    assert refused(token, SESSION) == "forged"  # a link is no session cookie
    assert refused(token, signer=DashboardSigner(b"another-secret")) == "forged"
    assert refused(token, signer=DashboardSigner(b"")) == "forged"  # no secret: nothing opens


def test_a_changed_user_or_expiry_is_forged() -> None:
    token = SIGNER.sign(LINK, "wh1", NOW + timedelta(minutes=15))
    body, mac = token.split(".")
    other = SIGNER.sign(LINK, "mgr1", NOW + timedelta(minutes=15)).split(".")[0]
    assert refused(f"{other}.{mac}") == "forged"
    assert refused(f"{body}.{mac[:-2]}") == "forged"


@given(st.text(max_size=600))
def test_any_other_text_is_refused_as_forged(token: str) -> None:
    assert refused(token) == "forged"


def test_yellow_below_98_5_and_sessions_end_at_midnight_china_time() -> None:
    assert (is_yellow(98.49), is_yellow(98.5), is_yellow(None)) == (True, False, False)
    assert end_of_day(NOW) == datetime(2026, 2, 6, 16, 0, tzinfo=UTC)  # 20:00 CST → 00:00 CST
