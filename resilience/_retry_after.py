"""``Retry-After`` parsing (RFC 9110 §10.2.3), pure.

``Retry-After`` is either delay-seconds or an HTTP-date in one of the three forms of RFC 9110
§5.6.7 (IMF-fixdate, obsolete RFC 850, ANSI C asctime). A date is measured against the
response's own ``Date`` header when it has a valid one, so a skewed local clock does not matter;
only without it is the injected wall clock used.

Rate-limit headers are read here too: the IETF draft's ``RateLimit`` / ``RateLimit-Policy``
(draft-ietf-httpapi-ratelimit-headers, both the structured ``"name";r=0;t=10`` form and the older
``limit=10, remaining=0, reset=10`` one) and ``X-RateLimit-Reset`` / ``RateLimit-Reset``, whose
value is epoch seconds, epoch milliseconds or seconds from now depending on the vendor.
:func:`rate_limit_delay` combines them.

Nothing here raises on input: garbage and negative values give None, dates in the past give 0,
and absurd values (more than :data:`MAX_DELAY`) give None.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from typing import Literal

__all__ = [
    "MAX_DELAY",
    "ResetUnit",
    "parse_http_date",
    "parse_ratelimit",
    "parse_ratelimit_reset",
    "parse_retry_after",
    "rate_limit_delay",
]

#: Longer than this is not a plausible wait but a broken header (one year).
MAX_DELAY = 366 * 24 * 3600.0

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_TIME = r"(\d{2}):(\d{2}):(\d{2})"
# Sun, 06 Nov 1994 08:49:37 GMT
_IMF = re.compile(rf"[A-Za-z]{{3}}, (\d{{2}}) ([A-Za-z]{{3}}) (\d{{4}}) {_TIME} GMT")
# Sunday, 06-Nov-94 08:49:37 GMT
_RFC850 = re.compile(rf"[A-Za-z]{{6,9}}, (\d{{2}})-([A-Za-z]{{3}})-(\d{{2}}) {_TIME} GMT")
# Sun Nov  6 08:49:37 1994
_ASCTIME = re.compile(rf"[A-Za-z]{{3}} ([A-Za-z]{{3}}) ([ \d]\d) {_TIME} (\d{{4}})")
_DELAY = re.compile(r"\d{1,12}(\.\d{1,6})?")


def _epoch(year: int, month_name: str, day: int, hh: str, mm: str, ss: str) -> float | None:
    month = _MONTHS.get(month_name.lower())
    hour, minute, second = int(hh), int(mm), int(ss)
    if month is None or not 1 <= day <= 31 or hour > 23 or minute > 59 or second > 60:
        return None
    try:
        return float(calendar.timegm((year, month, day, hour, minute, min(second, 59), 0, 0, 0)))
    except (OverflowError, ValueError):  # pragma: no cover - bounded by the regexes
        return None


def parse_http_date(value: str) -> float | None:
    """Parse an HTTP-date in any of its three forms into Unix seconds, or None."""
    text = value.strip()
    if match := _IMF.fullmatch(text):
        day, month, year, hh, mm, ss = match.groups()
        return _epoch(int(year), month, int(day), hh, mm, ss)
    if match := _RFC850.fullmatch(text):
        day, month, yy, hh, mm, ss = match.groups()
        # RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is in the past.
        # Resolved against 1970-2069 so the result does not depend on the local clock.
        year = int(yy) + (1900 if int(yy) >= 70 else 2000)
        return _epoch(year, month, int(day), hh, mm, ss)
    if match := _ASCTIME.fullmatch(text):
        month, day, hh, mm, ss, year = match.groups()
        return _epoch(int(year), month, int(day.strip()), hh, mm, ss)
    return None


def parse_retry_after(
    value: str | None,
    *,
    date: str | None = None,
    wall: Callable[[], float] | None = None,
) -> float | None:
    """Return the delay ``Retry-After`` asks for, in seconds.

    Args:
        value: The header's value.
        date: The response's ``Date`` header, the reference for an HTTP-date.
        wall: Current Unix time, used for an HTTP-date only when ``date`` is missing or invalid.

    Returns:
        The delay (``>= 0``), 0 for a date in the past, or None for a missing, malformed,
        negative or absurd value, or a date with no reference to measure it against. A header
        sent twice arrives joined (``"30, 30"``, as httpx and the RFC join repeated fields): the
        longest of the values that parse is the answer, so a duplicate never shortens the wait.
    """
    if value is None:
        return None
    delay = _one_retry_after(value.strip(), date, wall)
    if delay is None and "," in value:
        delays = [_one_retry_after(v, date, wall) for v in _joined_values(value)]
        delay = max((d for d in delays if d is not None), default=None)
    return delay


def _joined_values(value: str) -> list[str]:
    """The values of a comma-joined field; an HTTP-date's own comma (``Sun, 06 Nov ...``) kept."""
    pieces = [piece.strip() for piece in value.split(",")]
    values: list[str] = []
    i = 0
    while i < len(pieces):
        pair = f"{pieces[i]}, {pieces[i + 1]}" if i + 1 < len(pieces) else ""
        if pair and parse_http_date(pair) is not None:
            values.append(pair)
            i += 2
        else:
            values.append(pieces[i])
            i += 1
    return values


def _one_retry_after(text: str, date: str | None, wall: Callable[[], float] | None) -> float | None:
    if _DELAY.fullmatch(text):
        delay = float(text)
        return delay if delay <= MAX_DELAY else None
    target = parse_http_date(text)
    if target is None:
        return None
    reference = parse_http_date(date) if date is not None else None
    if reference is None:
        if wall is None:
            return None
        reference = wall()
    delay = target - reference
    if delay > MAX_DELAY:
        return None
    return max(delay, 0.0)


# -- rate-limit headers ---------------------------------------------------------------------

#: How a ``*RateLimit-Reset`` value is to be read. ``"auto"`` tells the three apart by size.
ResetUnit = Literal["auto", "epoch", "epoch_ms", "seconds"]

# Epoch seconds are between 2001 and 5138 (10 digits up to 1e11); epoch milliseconds between
# 2001 and 5138 too (1e12 up to 1e14). Anything up to MAX_DELAY is seconds from now; the gaps
# in between are absurd for every reading and give None.
_EPOCH_S = (1e9, 1e11)
_EPOCH_MS = (1e12, 1e14)
_NUMBER = re.compile(r"\d{1,16}(\.\d{1,6})?")


def _bounded(delay: float) -> float | None:
    if delay > MAX_DELAY:
        return None
    return max(delay, 0.0)


def parse_ratelimit_reset(
    value: str | None,
    *,
    date: str | None = None,
    wall: Callable[[], float] | None = None,
    unit: ResetUnit = "auto",
) -> float | None:
    """Seconds until a ``X-RateLimit-Reset`` / ``RateLimit-Reset`` time.

    Args:
        value: The header's value.
        date: The response's ``Date`` header: "now" for an epoch value, when valid.
        wall: Current Unix time, used when ``date`` is missing or invalid.
        unit: ``"epoch"`` (Unix seconds), ``"epoch_ms"`` (Unix milliseconds), ``"seconds"``
            (from now), or ``"auto"``: up to a year is seconds from now, 1e9-1e11 epoch
            seconds, 1e12-1e14 epoch milliseconds, anything else None. An adapter that knows
            its vendor pins the unit.

    Returns:
        The delay (``>= 0``; 0 for a reset in the past), or None for garbage, absurd values or
        an epoch value with no reference time.
    """
    if value is None:
        return None
    text = value.strip()
    if not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    if unit == "auto":
        if number <= MAX_DELAY:
            unit = "seconds"
        elif _EPOCH_S[0] <= number < _EPOCH_S[1]:
            unit = "epoch"
        elif _EPOCH_MS[0] <= number < _EPOCH_MS[1]:
            unit = "epoch_ms"
        else:
            return None
    if unit == "seconds":
        return _bounded(number)
    target = number / 1000.0 if unit == "epoch_ms" else number
    reference = parse_http_date(date) if date is not None else None
    if reference is None:
        if wall is None:
            return None
        reference = wall()
    return _bounded(target - reference)


def _params(item: str) -> tuple[str, dict[str, str]]:
    # One list member of a structured field: `"name";r=0;t=10` -> ("name", {"r": "0", "t": "10"})
    head, *rest = item.split(";")
    params: dict[str, str] = {}
    for part in rest:
        name, sep, val = part.partition("=")
        if sep:
            params[name.strip().lower()] = val.strip()
    return head.strip().strip('"'), params


def _nonneg(text: str | None) -> float | None:
    if text is None or not _NUMBER.fullmatch(text):
        return None
    return float(text)


def parse_ratelimit(ratelimit: str | None, policy: str | None = None) -> float | None:
    """Seconds to wait according to the IETF draft's ``RateLimit`` header.

    Two generations of the draft are read:

    - structured (draft 08 and later): ``RateLimit: "default";r=0;t=10`` with
      ``RateLimit-Policy: "default";q=100;w=60``. ``r`` is what remains of the quota, ``t``
      seconds until it refills (the policy's window ``w`` when ``t`` is absent).
    - older: ``RateLimit: limit=100, remaining=0, reset=10``.

    Returns:
        ``t`` (or ``reset``) when some quota is used up (remaining 0); 0 when every quota has
        requests left; None when the header says nothing usable.
    """
    if not ratelimit:
        return None
    windows: dict[str, float] = {}
    for item in (policy or "").split(","):
        name, params = _params(item)
        window = _nonneg(params.get("w"))
        if window is not None:
            windows[name] = window
    older: dict[str, str] = {}
    waits: list[float] = []
    understood = False
    for item in ratelimit.split(","):
        name, params = _params(item)
        key, sep, val = name.partition("=")
        if sep and not params:
            older[key.strip().lower()] = val.strip()
            continue
        remaining = _nonneg(params.get("r"))
        if remaining is None:
            continue
        understood = True
        if remaining < 1:
            reset = _nonneg(params.get("t"))
            reset = windows.get(name) if reset is None else reset
            if reset is not None:
                waits.append(reset)
    if not understood and "remaining" in older:
        remaining = _nonneg(older["remaining"])
        if remaining is not None:
            understood = True
            reset = _nonneg(older.get("reset"))
            if remaining < 1 and reset is not None:
                waits.append(reset)
    if not understood:
        return None
    return _bounded(max(waits, default=0.0))


def rate_limit_delay(
    headers: Mapping[str, str],
    *,
    wall: Callable[[], float] | None = None,
    reset_unit: ResetUnit = "auto",
) -> float | None:
    """What a response's headers say about waiting, in seconds.

    The first header that gives an answer wins: ``Retry-After``, then the draft's
    ``RateLimit`` (with ``RateLimit-Policy``), then ``RateLimit-Reset`` / ``X-RateLimit-Reset``,
    the last only when the matching ``*-Remaining`` header is 0 or absent (a reset time with
    requests left is not a reason to wait).

    Args:
        headers: The response's headers (any mapping; names are matched case-insensitively).
        wall: Current Unix time, for dates and epoch values when there is no ``Date`` header.
        reset_unit: How to read ``*RateLimit-Reset`` (see :func:`parse_ratelimit_reset`).

    Returns:
        The delay (``>= 0``), or None when no header says anything usable.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    date = lower.get("date")
    delay = parse_retry_after(lower.get("retry-after"), date=date, wall=wall)
    if delay is not None:
        return delay
    delay = parse_ratelimit(lower.get("ratelimit"), lower.get("ratelimit-policy"))
    if delay is not None:
        return delay
    for prefix in ("ratelimit-", "x-ratelimit-"):
        remaining = _nonneg((lower.get(prefix + "remaining") or "0").strip())
        if remaining is not None and remaining >= 1:
            continue
        delay = parse_ratelimit_reset(
            lower.get(prefix + "reset"), date=date, wall=wall, unit=reset_unit
        )
        if delay is not None:
            return delay
    return None
