"""DialNexa: ``message`` may be a list, 304 is a success, and a POST /calls is a phone call.

What the adapter encodes (``../shared/vendor-docs/dialnexa-errors.md`` and the further facts):

- Envelope ``{"statusCode": int, "message": str | [str], "error": str}``; a list of messages
  (one per invalid field) is kept whole in ``messages`` and joined with ``", "`` in ``message``,
  as the vendor's own examples do.
- 304 (a conditional ``GET /call-logs`` whose ETag matched) is ``not_modified``: a success.
- 400 is the vendor's validation answer (``validation``); 401 ``auth``; 404 ``not_found`` (also
  another organization's resource); 422 ``validation``; 500 ``server_error``.
- 403 is permanent, never retried: either the key lacks permission or the destination is blocked
  by the workspace's Telephony Config (the reason tells which).
- 409 on ``POST /calls`` saying the concurrency limit is reached created no call: retryable after a
  delay, for any method. Every other 409 (a state conflict) is not retried.
- 429: ``Retry-After`` seconds; failing that, ``X-RateLimit-Reset`` (documented as a Unix
  timestamp, but values like ``60`` are seen: values up to a year are read as seconds from
  now). A Unix value is measured against the response's ``Date``, and is never cut short.
- There is no idempotency header: ``POST /calls`` is never resent once it may have reached the
  server (5xx, read timeout), whatever headers the caller added. A connect failure (nothing sent)
  is safe to retry.

Standard stack: 3 attempts, backoff from 0.5 s doubling to 10 s with full jitter, ``Retry-After``
honoured up to 60 s, a Retry-After gate per origin and API key, a circuit breaker per origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import httpx

import resilience
from resilience import Classification, Kind, VendorError

from ._common import builder, text, texts

__all__ = [
    "CONCURRENCY_RETRY_AFTER",
    "DialNexaClassifier",
    "adapter",
    "classifier",
    "reset_delay",
    "stack",
    "transport",
]

#: How long to wait after a concurrency-limit 409 that carries no Retry-After (seconds).
CONCURRENCY_RETRY_AFTER = 2.0


def reset_delay(value: str | None, *, now: float, date: str | None = None) -> float | None:
    """Seconds until an ``X-RateLimit-Reset`` value, or None for garbage.

    Args:
        value: The header: Unix seconds, Unix milliseconds, or (as seen in practice) seconds
            from now, told apart by size (:func:`resilience.parse_ratelimit_reset`, ``"auto"``).
        now: The current Unix time, for a Unix value on a response without a valid ``Date``.
        date: The response's ``Date`` header: a Unix value is measured against the server's
            own clock when it is there, so a skewed local clock neither shortens nor stretches
            the wait.
    """
    return resilience.parse_ratelimit_reset(value, date=date, wall=lambda: now)


def _is_calls(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.rstrip("/").lower().endswith("/calls")


@attrs.frozen(kw_only=True)
class DialNexaClassifier(resilience.HTTPClassifier):
    """DialNexa's error rules."""

    #: Every rule here is about an error status: a success is judged by its status alone.
    plain_successes: ClassVar[bool] = True

    name: str = "dialnexa"

    def parse_error(self, response: httpx.Response, body: bytes) -> VendorError | None:
        """Read ``statusCode``/``message``/``error``; a list of messages is kept whole."""
        status = response.status_code
        if status < 400:
            return None
        envelope = resilience.json_object(body) or {}
        messages = texts(envelope.get("message"))
        message = ", ".join(messages) or response.reason_phrase or f"HTTP {status}"
        details = {"error": name} if (name := text(envelope.get("error"))) else {}
        return VendorError(
            status=status, message=message, messages=messages or (message,), details=details
        )

    def classify_status(
        self, request: httpx.Request, response: httpx.Response, error: VendorError | None
    ) -> Classification:
        """Status first; then the documented meanings of 400, 403 and 409."""
        plain = super().classify_status(request, response, error)
        status = response.status_code
        message = error.message.lower() if error else ""
        if status == 400:
            return attrs.evolve(plain, kind=Kind.VALIDATION)
        if status == 403:
            blocked = "destination" in message or "telephony config" in message
            why = "destination blocked by Telephony Config" if blocked else "key lacks permission"
            return attrs.evolve(plain, reason=f"HTTP 403 {why}")
        if status == 409 and _is_calls(request) and "concurrency limit" in message:
            return attrs.evolve(
                plain,
                retryable=True,
                may_have_executed=False,  # the vendor created no call
                retry_after=self.retry_after(response) or CONCURRENCY_RETRY_AFTER,
                reason="HTTP 409 concurrency limit reached; no call created",
            )
        return plain

    def retry_after(self, response: httpx.Response) -> float | None:
        """``Retry-After``, else ``X-RateLimit-Reset`` on a 429."""
        delay = super().retry_after(response)
        if delay is None and response.status_code == 429:
            headers = response.headers
            delay = reset_delay(
                headers.get("x-ratelimit-reset"), now=self.wall(), date=headers.get("date")
            )
        return delay


classifier = DialNexaClassifier()

DEFAULTS: Mapping[str, Any] = {
    "attempts": 3,
    "backoff": {"initial": 0.5, "maximum": 10.0, "multiplier": 2.0, "jitter": "full"},
    "max_retry_after": 60.0,
}

stack = builder(classifier, vendor="dialnexa", defaults=DEFAULTS)


def transport(
    inner: httpx.AsyncBaseTransport | None = None, **overrides: Any
) -> httpx.AsyncBaseTransport:
    """The standard DialNexa stack around ``inner`` (default ``httpx.AsyncHTTPTransport()``)."""
    return stack(**overrides).transport(inner)


adapter = resilience.Adapter(
    name="dialnexa",
    classifier=classifier,
    build_stack=stack,
    description="DialNexa API: message lists, 304, never-resent calls, rate-limit headers",
)
