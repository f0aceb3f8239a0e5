"""What a response or a transport failure means: the value every layer decides on.

A classifier turns one attempt (a response, or the exception that replaced it) into a
:class:`Classification`. Layers never look at status codes themselves; they read the fields
below, so a vendor adapter changes behaviour everywhere by changing classifications only.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

__all__ = ["Classification", "Kind", "Login", "VendorError"]


class Kind(str, enum.Enum):
    """The kind of an outcome. A ``str`` enum, so it logs and compares as its value."""

    SUCCESS = "success"
    NOT_MODIFIED = "not_modified"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    NETWORK = "network"
    TIMEOUT = "timeout"
    AUTH = "auth"
    LOCKED_OUT = "locked_out"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    VALIDATION = "validation"
    BAD_REQUEST = "bad_request"
    CLIENT_ERROR = "client_error"

    def __str__(self) -> str:
        return self.value

    @property
    def is_success(self) -> bool:
        """True for the kinds that are not errors (``success`` and ``not_modified``)."""
        # Module globals, not ``Kind.SUCCESS``: a class-level member lookup costs a few hundred
        # nanoseconds on Python 3.11, and every classified attempt asks this.
        return self is _SUCCESS or self is _NOT_MODIFIED


_SUCCESS = Kind.SUCCESS
_NOT_MODIFIED = Kind.NOT_MODIFIED


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _frozen_mapping(value: Mapping[str, object] | None) -> Mapping[str, object]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen(kw_only=True)
class VendorError:
    """An error as the vendor described it in the response body.

    Attributes:
        status: The HTTP status code of the response.
        code: The vendor's stable machine-readable code, or None where the vendor gave none
            (or gave one it does not promise to keep stable).
        message: One human-readable line (a vendor's list of messages joined with ``", "``).
        messages: Every message the vendor gave, in order.
        details: Field-level or other structured context (read-only).
        request_id: The vendor's request identifier, for support tickets, if it sent one.
    """

    status: int
    code: str | None = None
    message: str = ""
    messages: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    details: Mapping[str, object] = attrs.field(factory=dict, converter=_frozen_mapping)
    request_id: str | None = None


@attrs.frozen(kw_only=True)
class Classification:
    """The verdict on one attempt.

    Attributes:
        kind: What happened.
        retry_after: Seconds the server asked us to wait before the next request, or None.
        counts_as_failure: Whether the circuit breaker counts this attempt against the
            server's health (server errors, network failures, timeouts; never 4xx or 429).
        error: The vendor's error, parsed from the body, or None.
        retryable: Whether another attempt may succeed where this one failed. Says nothing
            about safety; see ``may_have_executed``.
        may_have_executed: Whether the server may have acted on the request. False when it was
            never sent (connect error, pool timeout) or the server refused it outright (429,
            a documented "nothing was done" answer). Only such attempts may be resent for a
            request that is not idempotent.
        vendor: The name of the adapter that classified it (``"http"`` for plain RFC 9110).
        reason: A short, secret-free explanation, for logs and span events.
    """

    kind: Kind
    retry_after: float | None = None
    counts_as_failure: bool = False
    error: VendorError | None = None
    retryable: bool = False
    may_have_executed: bool = True
    vendor: str = "http"
    reason: str = ""

    @property
    def is_success(self) -> bool:
        """True when the attempt is not an error (2xx, 3xx, 304)."""
        return self.kind.is_success


@attrs.frozen(kw_only=True)
class Login:
    """A login request, as a classifier recognises it, with the vendor's lockout policy.

    The lockout guard is vendor-neutral: everything it knows about logins comes from here.

    Attributes:
        identity: Who is logging in, as a fingerprint (see ``resilience.fingerprint``); never
            the email or username itself. The guard keeps one budget per identity, whatever
            origin the login goes to, so make it name the vendor's account: Get2Dial's is
            ``fingerprint("get2dial", email)``.
        max_failures: Failed logins after which the vendor locks the account.
        window: Seconds over which the vendor counts failed logins.
        lockout: Seconds the vendor locks the account for.
    """

    identity: str
    max_failures: int = attrs.field(validator=attrs.validators.ge(1))
    window: float = attrs.field(validator=attrs.validators.ge(0))
    lockout: float = attrs.field(validator=attrs.validators.ge(0))
