"""Fault schedules: what goes wrong, for which requests, and when.

A :class:`Fault` matches requests by method and path prefix and is active either for its next
``count`` matching requests (deterministic, for tests), during a window ``[start, end)`` of the
simulator's clock in seconds since the simulator started (for demos), both, or always. A
:class:`FaultSchedule` holds the faults; the simulator asks it once per request.

The same faults can be written as text (``--fault`` on the command line)::

    KIND[=VALUE][,KEY=VALUE ...]

    status=503,count=2,retry_after=1    two 503s in the vendor's envelope, with Retry-After: 1
    rate_limit,path=/v1/calls,start=5,end=15   429s with the vendor's headers, t in [5, 15)
    outage,start=30,end=60              a proxy's 503 page for every request for 30 s
    outage=502                          a proxy's 502 page, from now on
    slow=2.5,method=GET                 every GET answered 2.5 s late
    drop,method=POST,count=1            the next POST runs, then its connection is cut mid-body

Keys: ``method``, ``path`` (prefix), ``count``, ``start``, ``end``, ``status``, ``retry_after``
(seconds, or any text to send verbatim), ``delay`` and ``executed`` (``true``/``false``: whether
the request reaches the vendor logic, side effects included, before the fault answers).
"""

from __future__ import annotations

import enum
import re
import threading

import attrs

__all__ = ["Fault", "FaultKind", "FaultSchedule", "parse_fault"]


class FaultKind(str, enum.Enum):
    """What a fault does to the requests it matches."""

    STATUS = "status"
    """Answer ``status`` (500 by default) in the vendor's own error envelope."""
    RATE_LIMIT = "rate_limit"
    """Answer 429 with the vendor's own rate-limit headers and body."""
    OUTAGE = "outage"
    """Answer ``status`` (503 by default) with a proxy's HTML page, as when the vendor is down."""
    SLOW = "slow"
    """Wait ``delay`` seconds before answering (the vendor logic has run already)."""
    DROP = "drop"
    """Send the status line and half the body, then close the connection."""


def _status_default(fault: Fault) -> int:
    return 503 if fault.kind is FaultKind.OUTAGE else 500


def _executed_default(fault: Fault) -> bool:
    return fault.kind in {FaultKind.DROP, FaultKind.SLOW}


def _upper_or_none(value: str | None) -> str | None:
    return value.upper() if value else None


@attrs.frozen(kw_only=True)
class Fault:
    """One rule of a fault schedule.

    Attributes:
        kind: What the fault does.
        method: Only requests with this method (any when None).
        path: Only requests whose path starts with this prefix.
        count: Active for this many matching requests, then spent (no limit when None).
        start: Active from this simulator time on (seconds since the simulator started).
        end: Active before this simulator time.
        status: The status of ``status`` and ``outage`` faults.
        retry_after: A ``Retry-After`` value to send (seconds, or text sent verbatim).
        delay: Seconds a ``slow`` fault waits before answering.
        executed: Whether the vendor logic (and its side effects, e.g. a created call) runs
            before the fault answers. Defaults to True for ``drop`` and ``slow``, else False.
    """

    kind: FaultKind = attrs.field(converter=FaultKind)
    method: str | None = attrs.field(default=None, converter=_upper_or_none)
    path: str = "/"
    count: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(1))
    )
    start: float | None = None
    end: float | None = None
    status: int = attrs.field(
        default=attrs.Factory(_status_default, takes_self=True),
        validator=[attrs.validators.ge(100), attrs.validators.le(599)],
    )
    retry_after: float | str | None = None
    delay: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    executed: bool = attrs.field(default=attrs.Factory(_executed_default, takes_self=True))

    def __attrs_post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"fault window is empty: start={self.start} end={self.end}")
        if self.kind is FaultKind.DROP and not self.executed:
            raise ValueError("a drop fault cuts a response, so the request is always executed")

    def matches(self, method: str, path: str, now: float) -> bool:
        """Whether this fault applies to ``method path`` at simulator time ``now``."""
        if self.method is not None and self.method != method.upper():
            return False
        if not path.startswith(self.path):
            return False
        if self.start is not None and now < self.start:
            return False
        return self.end is None or now < self.end

    def spec(self) -> str:
        """The text form of this fault; :func:`parse_fault` reads it back to an equal fault."""
        defaults = Fault(kind=self.kind)
        parts = [self.kind.value]
        for name in _SPEC_KEYS:
            value = getattr(self, name)
            if value != getattr(defaults, name):
                text = str(value).lower() if isinstance(value, bool) else str(value)
                parts.append(f"{name}={text}")
        return ",".join(parts)

    def retry_after_header(self) -> str | None:
        """The Retry-After header value this fault sends, or None."""
        if self.retry_after is None:
            return None
        if isinstance(self.retry_after, float) and self.retry_after.is_integer():
            return str(int(self.retry_after))
        return str(self.retry_after)


@attrs.define
class _Entry:
    fault: Fault
    remaining: int | None


class FaultSchedule:
    """The faults a simulator applies; safe to change from another thread at any time."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault | str) -> Fault:
        """Add ``fault`` (a :class:`Fault` or its text form) and return it."""
        if isinstance(fault, str):
            fault = parse_fault(fault)
        with self._lock:
            self._entries.append(_Entry(fault, fault.count))
        return fault

    def remove(self, fault: Fault) -> None:
        """Remove ``fault`` (every copy of it); nothing happens if it is not there."""
        with self._lock:
            self._entries = [e for e in self._entries if e.fault is not fault]

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._entries.clear()

    @property
    def active(self) -> list[Fault]:
        """The faults not spent yet, in the order they were added."""
        with self._lock:
            return [e.fault for e in self._entries]

    def take(self, method: str, path: str, now: float) -> list[Fault]:
        """The faults that apply to this request, spending one use of each counted fault.

        At most one answering fault (``status``, ``rate_limit``, ``outage``, ``drop``) is taken,
        the first added; every matching ``slow`` fault is taken too.
        """
        taken: list[Fault] = []
        answering = False
        with self._lock:
            for entry in self._entries:
                fault = entry.fault
                if not fault.matches(method, path, now):
                    continue
                if fault.kind is not FaultKind.SLOW:
                    if answering:
                        continue
                    answering = True
                taken.append(fault)
                if entry.remaining is not None:
                    entry.remaining -= 1
            self._entries = [e for e in self._entries if e.remaining != 0]
        return taken


_SPEC_KEYS = (
    "method",
    "path",
    "count",
    "start",
    "end",
    "status",
    "retry_after",
    "delay",
    "executed",
)
_FLOAT_KEYS = {"start", "end", "delay"}
_INT_KEYS = {"count", "status"}
_BOOL = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def parse_fault(spec: str) -> Fault:
    """Parse the text form ``KIND[=VALUE][,KEY=VALUE ...]`` (see the module docstring).

    Raises:
        ValueError: The text is not a valid fault.
    """
    # Split only before "key=", so an HTTP-date Retry-After may keep its comma.
    head, *rest = [part.strip() for part in re.split(r",\s*(?=[A-Za-z_]+=)", spec)]
    kind_text, _, value = head.partition("=")
    try:
        kind = FaultKind(kind_text.strip().lower())
    except ValueError:
        kinds = ", ".join(k.value for k in FaultKind)
        raise ValueError(
            f"unknown fault kind {kind_text!r} in {spec!r}; use one of {kinds}"
        ) from None
    fields: dict[str, object] = {"kind": kind}
    pairs = [p.partition("=") for p in rest if p]
    if value:
        pairs.insert(0, ("delay" if kind is FaultKind.SLOW else "status", "=", value))
    for raw_key, sep, raw_value in pairs:
        key, raw = raw_key.strip().lower(), raw_value.strip()
        if not sep or not raw:
            raise ValueError(f"expected KEY=VALUE, got {raw_key!r} in {spec!r}")
        try:
            fields[key] = _convert(key, raw)
        except ValueError as exc:
            raise ValueError(f"bad value for {key!r} in {spec!r}: {exc}") from None
    return Fault(**fields)  # type: ignore[arg-type]


def _convert(key: str, raw: str) -> object:
    if key in _FLOAT_KEYS:
        return float(raw)
    if key in _INT_KEYS:
        return int(raw)
    if key == "executed":
        if raw.lower() not in _BOOL:
            raise ValueError("expected true or false")
        return _BOOL[raw.lower()]
    if key == "retry_after":
        try:
            return float(raw)
        except ValueError:
            return raw
    if key in {"method", "path"}:
        return raw
    raise ValueError(f"unknown key {key!r}")
