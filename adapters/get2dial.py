"""Get2Dial: no error codes, a generic envelope, and a login lockout that must never be ours.

What the adapter encodes (``../shared/vendor-docs/get2dial-errors.md`` and the further facts):

- Envelope ``{"status": "error", "message": str}``; the HTTP status carries the meaning. Where
  the envelope is broken, the status alone decides.
- 400 (malformed, or an unknown body field), 401 (not authenticated, or wrong credentials on
  login), 403 (not allowed), 404 (no such resource, or another tenant's), 409 (state conflict) are
  never retried.
- A 403 whose message contains ``account temporarily locked`` is the failed-login lockout:
  ``locked_out``, for the documented 15 minutes. Any other 403 is ``forbidden``.
- 500 is "safe to retry for idempotent reads": only GET, HEAD and OPTIONS count as idempotent
  here (not PUT or DELETE), so nothing that writes is resent after it may have run.
- No 429, Retry-After or idempotency key is documented; a 429 would be handled as plain HTTP.
- ``POST /api/v1/auth/login`` is the login. Its identity is the email (case-folded), kept only as
  a fingerprint; the optional ``tenant_domain`` is left out, because the vendor counts failures
  per account whatever the tenant sent. 10 failed logins lock the account for 15 minutes; the
  standard stack's ``LockoutGuard`` allows at most half of that locally, so this client is never
  the one that locks a company out.
- Nothing is ever added to a request body (bodies reject unknown fields).

Standard stack: 3 attempts, backoff from 0.5 s doubling to 8 s with full jitter, a lockout guard,
a circuit breaker per origin.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import httpx

import resilience
from resilience import Classification, Kind, VendorError

from ._common import builder, text

__all__ = [
    "LOCKOUT_MESSAGE",
    "LOGIN_PATH",
    "Get2DialClassifier",
    "adapter",
    "classifier",
    "stack",
    "transport",
]

LOGIN_PATH = "/api/v1/auth/login"
LOCKOUT_MESSAGE = "account temporarily locked"
#: The documented lockout policy: 10 failed logins, counted over and locking for 15 minutes.
MAX_FAILED_LOGINS = 10
LOCKOUT_SECONDS = 15 * 60.0
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


@attrs.frozen(kw_only=True)
class Get2DialClassifier(resilience.HTTPClassifier):
    """Get2Dial's error rules and login policy."""

    #: Every rule here is about an error status: a success is judged by its status alone.
    plain_successes: ClassVar[bool] = True

    name: str = "get2dial"

    def is_idempotent(self, request: httpx.Request) -> bool:
        """Only reads: the docs promise safe retries for idempotent reads, nothing more."""
        return request.method in _READS

    def parse_error(self, response: httpx.Response, body: bytes) -> VendorError | None:
        """Read ``{"status": "error", "message": ...}``; fall back to the reason phrase."""
        status = response.status_code
        if status < 400:
            return None
        envelope = resilience.json_object(body) or {}
        message = text(envelope.get("message")) if envelope.get("status") == "error" else None
        message = message or response.reason_phrase or f"HTTP {status}"
        return VendorError(status=status, message=message, messages=(message,))

    def classify_status(
        self, request: httpx.Request, response: httpx.Response, error: VendorError | None
    ) -> Classification:
        """The status decides, except for the documented lockout message on a 403."""
        plain = super().classify_status(request, response, error)
        if (
            response.status_code == 403
            and error is not None
            and LOCKOUT_MESSAGE in error.message.lower()
        ):
            return attrs.evolve(
                plain,
                kind=Kind.LOCKED_OUT,
                retry_after=self.retry_after(response) or LOCKOUT_SECONDS,
                reason="HTTP 403 account temporarily locked",
            )
        return plain

    def login(self, request: httpx.Request) -> resilience.Login | None:
        """``POST /api/v1/auth/login``: the identity is the email, whatever the tenant domain.

        Get2Dial counts failed logins per account (the email), and ``tenant_domain`` is optional:
        keying on it too would give one account a budget per tenant spelling (with, without, a
        wrong one), and five failures of each add up to the vendor's ten.
        """
        if request.method != "POST" or not _is_login_path(request.url.path):
            return None
        email = ""
        try:
            body = json.loads(request.content)
        except (httpx.RequestNotRead, ValueError):
            body = None
        if isinstance(body, dict):
            email = (text(body.get("email")) or "").strip().casefold()
        return resilience.Login(
            identity=resilience.fingerprint("get2dial", email),
            max_failures=MAX_FAILED_LOGINS,
            window=LOCKOUT_SECONDS,
            lockout=LOCKOUT_SECONDS,
        )


def _is_login_path(path: str) -> bool:
    """Whether ``path`` is the login endpoint, however spelled.

    The vendor also answers ``/api/v1/auth/login/``; a guard that missed a spelling would let
    its failed logins through uncounted.
    """
    return path.rstrip("/").lower().endswith(LOGIN_PATH)


classifier = Get2DialClassifier()

DEFAULTS: Mapping[str, Any] = {
    "attempts": 3,
    "backoff": {"initial": 0.5, "maximum": 8.0, "multiplier": 2.0, "jitter": "full"},
    "max_retry_after": 60.0,
}

stack = builder(classifier, vendor="get2dial", defaults=DEFAULTS, login_guard=True)


def transport(
    inner: httpx.AsyncBaseTransport | None = None, **overrides: Any
) -> httpx.AsyncBaseTransport:
    """The standard Get2Dial stack around ``inner`` (default ``httpx.AsyncHTTPTransport()``)."""
    return stack(**overrides).transport(inner)


adapter = resilience.Adapter(
    name="get2dial",
    classifier=classifier,
    build_stack=stack,
    description="Get2Dial API: status-only errors, failed-login lockout guard",
)
