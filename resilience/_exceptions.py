"""Every exception this package raises, in one tree.

::

    Exception
    └── ResilienceError                      anything raised by this package
        ├── RejectedError                    refused without sending (also httpx.TransportError)
        │   ├── CircuitOpenError             the breaker for this key is open
        │   ├── LockedOutError               the lockout guard refuses a login
        │   ├── RateLimitedError             the Retry-After gate holds the key too long
        │   └── DeadlineExceededError        the stack's total deadline ran out
        │                                    (also httpx.TimeoutException)
        └── APIError                         raise_for_error: a response that is an error
            │                                (also httpx.HTTPStatusError)
            ├── BadRequestError              400 and other malformed-request answers
            ├── ValidationError              422, or a vendor's validation code
            ├── AuthError                    401
            ├── ForbiddenError               403
            ├── AccountLockedError           the server says the account is locked
            ├── NotFoundError                404, 410
            ├── ConflictError                409
            ├── RequestTimeoutError          408
            ├── TooManyRequestsError         429
            ├── ClientError                  any other 4xx
            └── ServerError                  5xx and codes outside 1xx-5xx

``RejectedError`` subclasses ``httpx.TransportError`` and ``APIError`` subclasses
``httpx.HTTPStatusError``, so code that already catches ``httpx.HTTPError`` keeps working.

Retries that run out are never wrapped: the last response is returned unchanged, and the last
transport exception is re-raised as itself. No message here ever contains a credential, a
request body or a query value.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import httpx

from ._classification import Classification, Kind
from ._redact import redact_text, redact_url

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "APIError",
    "AccountLockedError",
    "AuthError",
    "BadRequestError",
    "CircuitOpenError",
    "ClientError",
    "ConflictError",
    "DeadlineExceededError",
    "ForbiddenError",
    "LockedOutError",
    "NotFoundError",
    "RateLimitedError",
    "RejectedError",
    "RequestTimeoutError",
    "ResilienceError",
    "ServerError",
    "TooManyRequestsError",
    "ValidationError",
    "api_error_class",
]


class ResilienceError(Exception):
    """Base of every exception raised by this package."""


class RejectedError(ResilienceError, httpx.TransportError):
    """A layer refused to send the request. Nothing reached the network.

    Attributes:
        retry_after: Seconds after which the same request may be accepted, or None.
    """

    def __init__(
        self, message: str, *, request: httpx.Request, retry_after: float | None = None
    ) -> None:
        super().__init__(message, request=request)
        self.retry_after = retry_after


class CircuitOpenError(RejectedError):
    """The circuit breaker for this request's key is open."""


class LockedOutError(RejectedError):
    """The lockout guard refused a login.

    The account is locked, or one more failed login would risk locking it.
    """


class RateLimitedError(RejectedError):
    """The Retry-After gate holds this key for longer than the caller may wait."""


class DeadlineExceededError(RejectedError, httpx.TimeoutException):
    """The stack's total deadline ran out before the next attempt: nothing more was sent.

    An attempt that the deadline cuts in flight may have reached the server, so it raises a
    plain :class:`httpx.TimeoutException` instead (a ``RejectedError`` promises no sending).
    """


class APIError(ResilienceError, httpx.HTTPStatusError):
    """A response that is an error, raised by :func:`resilience.raise_for_error`.

    Attributes:
        status: The HTTP status code.
        code: The vendor's stable error code, or None.
        message: The vendor's message (list joined with ``", "``), secrets removed.
        messages: Every message the vendor gave.
        details: Structured context from the vendor (read-only).
        vendor: The adapter that classified the response.
        retry_after: Seconds the server asked to wait, or None.
        request_id: The vendor's request id, when it sent one.
        classification: The full :class:`~resilience.Classification`.
        response: The response itself (httpx's attribute), body still readable.
    """

    def __init__(self, response: httpx.Response, classification: Classification) -> None:
        request = response.request
        error = classification.error
        self.classification = classification
        self.status = response.status_code
        self.code = error.code if error else None
        self.messages = tuple(redact_text(m, request) for m in error.messages) if error else ()
        self.message = redact_text(error.message, request) if error else ""
        self.details: Mapping[str, object] = error.details if error else MappingProxyType({})
        self.request_id = error.request_id if error else None
        self.vendor = classification.vendor
        self.retry_after = classification.retry_after
        self.kind = classification.kind
        summary = f"{request.method} {redact_url(request.url)} -> {self.status} {self.kind}"
        if self.code:
            summary += f" [{self.code}]"
        if self.message:
            summary += f": {self.message}"
        super().__init__(summary, request=request, response=response)


class BadRequestError(APIError):
    """The request was malformed (400)."""


class ValidationError(BadRequestError):
    """The request was well-formed but its content was rejected (422, validation codes)."""


class AuthError(APIError):
    """Missing, invalid or expired credentials (401), or a failed login."""


class ForbiddenError(APIError):
    """Authenticated, but not allowed (403)."""


class AccountLockedError(ForbiddenError):
    """The server says the account is locked; ``retry_after`` says for how long if known."""


class NotFoundError(APIError):
    """No such resource (404, 410)."""


class ConflictError(APIError):
    """The request conflicts with the resource's current state (409)."""


class RequestTimeoutError(APIError):
    """The server timed out waiting for the request (408)."""


class TooManyRequestsError(APIError):
    """The server is rate-limiting this client (429)."""


class ClientError(APIError):
    """Any other 4xx."""


class ServerError(APIError):
    """The server failed (5xx, or a status outside 1xx-5xx)."""


_BY_KIND: Mapping[Kind, type[APIError]] = {
    Kind.BAD_REQUEST: BadRequestError,
    Kind.VALIDATION: ValidationError,
    Kind.AUTH: AuthError,
    Kind.FORBIDDEN: ForbiddenError,
    Kind.LOCKED_OUT: AccountLockedError,
    Kind.NOT_FOUND: NotFoundError,
    Kind.CONFLICT: ConflictError,
    Kind.TIMEOUT: RequestTimeoutError,
    Kind.RATE_LIMITED: TooManyRequestsError,
    Kind.CLIENT_ERROR: ClientError,
    Kind.SERVER_ERROR: ServerError,
    Kind.NETWORK: ServerError,
}


def api_error_class(
    classification: Classification,
    refine: Callable[[Classification], type[APIError] | None] | None = None,
) -> type[APIError]:
    """The exception class for an error classification; ``refine`` may pick a subclass."""
    chosen = refine(classification) if refine is not None else None
    return chosen or _BY_KIND.get(classification.kind, ClientError)
