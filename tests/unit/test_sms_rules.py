"""Pure rules behind customer texts: Aliyun's RPC signature, quiet hours, the masked phone number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.clock import CST
from domain.customers import masked_phone
from domain.quiet_hours import QuietHours
from integrations.sms.aliyun import percent_encode, rpc_signature

# Aliyun's documented example (ECS DescribeRegions, secret "testsecret"), the vector every RPC signer checks against.
DOC_PARAMS = {
    "AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML", "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26",
}


def test_signature_matches_aliyuns_documented_example() -> None:
    assert rpc_signature(DOC_PARAMS, "testsecret", "GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_percent_encoding_follows_rfc_3986_as_aliyun_wants() -> None:
    assert percent_encode("a b*c~d") == "a%20b%2Ac~d"
    assert percent_encode("发货") == "%E5%8F%91%E8%B4%A7"


def beijing(hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 10, 9, hour, minute, tzinfo=CST).astimezone(UTC)


def test_quiet_hours_hold_from_nine_in_the_evening_until_eight() -> None:
    quiet = QuietHours()
    assert quiet.next_allowed(beijing(20, 59)) == beijing(20, 59)
    assert quiet.next_allowed(beijing(21, 0)) == beijing(8) + timedelta(days=1)
    assert quiet.next_allowed(beijing(2, 30)) == beijing(8)
    assert quiet.next_allowed(beijing(8, 0)) == beijing(8, 0)
    assert not QuietHours.of("00:00", "00:00").quiet(beijing(23))


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_the_next_allowed_time_is_never_quiet_and_never_more_than_eleven_hours_away(at: datetime) -> None:
    quiet = QuietHours()
    allowed = quiet.next_allowed(at)
    assert not quiet.quiet(allowed)
    assert timedelta(0) <= allowed - at <= timedelta(hours=11)
    assert (allowed == at) != quiet.quiet(at)


def test_a_phone_number_is_shown_masked() -> None:
    assert masked_phone("13812341234") == "138****1234"
    assert masked_phone("+8613812341234") == "+86****1234"
    assert masked_phone("12345") == "*****"
