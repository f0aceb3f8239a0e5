"""Rate-limit headers: the IETF draft and the three kinds of *RateLimit-Reset, pure and total."""

from __future__ import annotations

import calendar

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience import parse_ratelimit_reset, rate_limit_delay
from resilience._retry_after import MAX_DELAY, parse_ratelimit

NOW = 1_700_000_000.0
NOW_DATE = "Tue, 14 Nov 2023 22:13:20 GMT"
assert calendar.timegm((2023, 11, 14, 22, 13, 20, 0, 0, 0)) == NOW


def wall() -> float:
    return NOW


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("60", 60.0),  # seconds from now (DialNexa has been seen sending these)
        ("1700000060", 60.0),  # epoch seconds
        ("1700000060000", 60.0),  # epoch milliseconds
        ("1700000060.5", 60.5),
        ("1699999000", 0.0),  # in the past
        ("0", 0.0),
    ],
)
def test_reset_units_are_told_apart(value: str, expected: float) -> None:
    assert parse_ratelimit_reset(value, wall=wall) == expected


def test_epoch_is_measured_against_the_response_date() -> None:
    skewed = lambda: NOW + 3600.0  # noqa: E731 - the local clock is an hour ahead
    assert parse_ratelimit_reset("1700000030", date=NOW_DATE, wall=skewed) == 30.0


def test_an_adapter_can_pin_the_unit() -> None:
    assert parse_ratelimit_reset("1700000060", unit="seconds") is None  # absurd as a delay
    assert parse_ratelimit_reset("90", unit="epoch", wall=wall) == 0.0  # 1970: in the past
    assert parse_ratelimit_reset("1700000005000", unit="epoch_ms", wall=wall) == 5.0
    assert parse_ratelimit_reset("1700000005", unit="epoch") is None  # no reference time


@pytest.mark.parametrize(
    "value", [None, "", "soon", "-5", "1e9", "0x10", "100000000", "99999999999999999", " "]
)
def test_garbage_and_absurd_resets_are_none(value: str | None) -> None:
    assert parse_ratelimit_reset(value, wall=wall) is None


@pytest.mark.parametrize(
    ("ratelimit", "policy", "expected"),
    [
        ('"default";r=0;t=10', None, 10.0),
        ('"default";r=5;t=10', None, 0.0),
        ('"burst";r=3;t=1, "daily";r=0;t=3600', None, 3600.0),
        ('"default";r=0', '"default";q=100;w=60', 60.0),
        ("limit=100, remaining=0, reset=7", None, 7.0),
        ("limit=100, remaining=4, reset=7", None, 0.0),
        ("garbage", None, None),
        ('"default";t=10', None, None),
        ("", None, None),
    ],
)
def test_ietf_draft_ratelimit(ratelimit: str, policy: str | None, expected: float | None) -> None:
    assert parse_ratelimit(ratelimit, policy) == expected


def test_headers_in_order_of_precedence() -> None:
    both = {"Retry-After": "3", "X-RateLimit-Reset": "60", "X-RateLimit-Remaining": "0"}
    assert rate_limit_delay(both) == 3.0
    assert rate_limit_delay(httpx.Headers({"ratelimit": '"d";r=0;t=9'})) == 9.0
    assert rate_limit_delay({"X-RateLimit-Reset": "1700000020"}, wall=wall) == 20.0
    assert rate_limit_delay({"RateLimit-Reset": "20", "RateLimit-Remaining": "0"}) == 20.0
    assert rate_limit_delay({"RateLimit-Reset": "20", "RateLimit-Remaining": "7"}) is None
    assert rate_limit_delay({"Date": NOW_DATE, "X-RateLimit-Reset": "1700000012"}) == 12.0
    assert rate_limit_delay({"X-RateLimit-Reset": "60"}, reset_unit="epoch", wall=wall) == 0.0
    assert rate_limit_delay({}) is None
    assert rate_limit_delay({"Retry-After": "junk", "X-RateLimit-Reset": "junk"}) is None


names = st.sampled_from(
    [
        "Retry-After",
        "Date",
        "RateLimit",
        "RateLimit-Policy",
        "RateLimit-Reset",
        "RateLimit-Remaining",
        "X-RateLimit-Reset",
        "X-RateLimit-Remaining",
    ]
)
values = st.text() | st.integers(-(10**15), 10**15).map(str) | st.floats().map(str)


@given(st.dictionaries(names, values), st.sampled_from(["auto", "epoch", "epoch_ms", "seconds"]))
def test_never_raises_never_negative(headers: dict[str, str], unit: str) -> None:
    delay = rate_limit_delay(headers, wall=wall, reset_unit=unit)  # type: ignore[arg-type]
    assert delay is None or 0.0 <= delay <= MAX_DELAY


@given(st.text(), st.text() | st.none())
def test_draft_parser_is_total(ratelimit: str, policy: str | None) -> None:
    delay = parse_ratelimit(ratelimit, policy)
    assert delay is None or 0.0 <= delay <= MAX_DELAY
