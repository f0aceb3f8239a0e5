"""Retry-After parsing: pure, total, never negative."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience import parse_http_date, parse_retry_after
from resilience._retry_after import MAX_DELAY

NOV_6_1994 = calendar.timegm((1994, 11, 6, 8, 49, 37, 0, 0, 0))


@pytest.mark.parametrize(
    "value",
    ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"],
    ids=["imf-fixdate", "rfc850", "asctime"],
)
def test_three_http_date_forms(value: str) -> None:
    assert parse_http_date(value) == NOV_6_1994


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("120", 120.0), (" 7 ", 7.0), ("1.5", 1.5)],
)
def test_delay_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value) == expected


def test_date_is_measured_against_the_response_date_not_the_local_clock() -> None:
    # The local clock is a day off; the server's Date header says 30 s before the target.
    delay = parse_retry_after(
        "Sun, 06 Nov 1994 08:50:07 GMT",
        date="Sun, 06 Nov 1994 08:49:37 GMT",
        wall=lambda: NOV_6_1994 + 86_400,
    )
    assert delay == 30.0


def test_date_without_date_header_uses_the_wall_clock() -> None:
    delay = parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", wall=lambda: NOV_6_1994)
    assert delay == 10.0


def test_date_with_no_reference_at_all_is_none() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT") is None


def test_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", wall=lambda: NOV_6_1994 + 5) == 0.0


@pytest.mark.parametrize(
    "value",
    [None, "", "soon", "-5", "1e3", "0x10", "12abc", "Sun, 32 Nov 1994 08:49:37 GMT",
     "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT", "99999999999999",
     "Sun, 06 Nov 1994 08:49:37 PST", "\x00\x01"],
)  # fmt: skip
def test_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, wall=lambda: NOV_6_1994) is None


def test_absurd_delay_is_none() -> None:
    assert parse_retry_after(str(int(MAX_DELAY) + 1)) is None
    assert parse_retry_after("Fri, 01 Jan 9999 00:00:00 GMT", wall=lambda: NOV_6_1994) is None


@given(st.text(), st.one_of(st.none(), st.text()), st.floats(0, 4e9))
def test_never_raises_never_negative(value: str, date: str | None, now: float) -> None:
    delay = parse_retry_after(value, date=date, wall=lambda: now)
    assert delay is None or 0.0 <= delay <= MAX_DELAY


@given(st.integers(0, int(MAX_DELAY)))
def test_delay_seconds_round_trip(seconds: int) -> None:
    assert parse_retry_after(str(seconds)) == float(seconds)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30, 30", 30.0),
        ("5, 30", 30.0),
        ("soon, 7", 7.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT, 20", 20.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT, Wed, 21 Oct 2015 07:28:40 GMT", 40.0),
        (",", None),
        ("soon, later", None),
    ],
)
def test_a_field_sent_twice_gives_its_longest_value(value: str, expected: float | None) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after(value, date=date) == expected
