"""Classifiers: from one attempt to a :class:`~resilience.Classification`.

:class:`HTTPClassifier` encodes plain RFC 9110 semantics and is what a stack uses when no
adapter is given. Vendor adapters subclass it and override the hooks (``parse_error``,
``classify_status``, ``is_idempotent``, ``prepare``) rather than re-implementing it, so the
parts every vendor shares (body bounds, exception mapping, Retry-After) stay in one place.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import attrs
import httpx

from ._classification import Classification, Kind, Login, VendorError
from ._exceptions import APIError
from ._retry_after import parse_retry_after

__all__ = [
    "IDEMPOTENT_METHODS",
    "Classifier",
    "HTTPClassifier",
    "json_object",
]

#: RFC 9110 §9.2.2: methods whose repetition has the same effect as one request.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


@runtime_checkable
class Classifier(Protocol):
    """What a stack asks of a vendor's rules. Subclass :class:`HTTPClassifier` to write one."""

    @property
    def name(self) -> str:
        """The vendor name recorded on classifications and errors."""
        ...

    def prepare(self, request: httpx.Request) -> None:
        """Adjust a request before each attempt (e.g. attach an idempotency key once)."""

    def is_idempotent(self, request: httpx.Request) -> bool:
        """Whether sending ``request`` twice has the effect of sending it once."""
        ...

    def wants_body(self, request: httpx.Request, response: httpx.Response) -> bool:
        """Whether classifying ``response`` needs the start of its body."""
        ...

    def classify_response(
        self, request: httpx.Request, response: httpx.Response, body: bytes
    ) -> Classification:
        """Classify a response, given up to the peek limit of its decoded body."""
        ...

    def classify_exception(self, request: httpx.Request, exc: Exception) -> Classification:
        """Classify the exception an attempt raised instead of returning a response."""
        ...

    def error_class(self, classification: Classification) -> type[APIError] | None:
        """A vendor-specific :class:`~resilience.APIError` subclass, or None for the default."""
        ...

    def login(self, request: httpx.Request) -> Login | None:
        """The login this request is, with the vendor's lockout policy, or None."""
        ...


def json_object(body: bytes) -> Mapping[str, object] | None:
    """Parse ``body`` as a JSON object, or return None for anything else.

    Garbage, truncated JSON, arrays, strings, numbers and bytes that are not UTF-8 all give None:
    the caller falls back to the status line.
    """
    if not body:
        return None
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


# Status -> (kind, retryable, counts_as_failure, may_have_executed). RFC 9110 §15 and RFC 6585.
_STATUS_TABLE: Mapping[int, tuple[Kind, bool, bool, bool]] = {
    304: (Kind.NOT_MODIFIED, False, False, True),
    400: (Kind.BAD_REQUEST, False, False, True),
    401: (Kind.AUTH, False, False, True),
    403: (Kind.FORBIDDEN, False, False, True),
    404: (Kind.NOT_FOUND, False, False, True),
    # 408: the server closed an idle connection before it read a request; nothing was done.
    408: (Kind.TIMEOUT, True, False, False),
    409: (Kind.CONFLICT, False, False, True),
    410: (Kind.NOT_FOUND, False, False, True),
    422: (Kind.VALIDATION, False, False, True),
    # 429 (RFC 6585 §4): the request was refused, not processed; it is safe to send again.
    429: (Kind.RATE_LIMITED, True, False, False),
    # 501 and 505 are permanent answers about this request, not signs of an unhealthy server.
    501: (Kind.SERVER_ERROR, False, False, True),
    505: (Kind.SERVER_ERROR, False, False, True),
}


def _by_class(status: int) -> tuple[Kind, bool, bool, bool]:
    # RFC 9110 §15: an unrecognised code is treated as the x00 code of its class.
    if 100 <= status < 400:
        return (Kind.SUCCESS, False, False, True)
    if 400 <= status < 500:
        return (Kind.CLIENT_ERROR, False, False, True)
    if 500 <= status < 600:
        return (Kind.SERVER_ERROR, True, True, True)
    # Outside 1xx-5xx: the server is misbehaving. Counted, not retried.
    return (Kind.SERVER_ERROR, False, True, True)


#: Verdicts without a vendor error that one classifier keeps, by status (a bound for odd codes).
_PLAIN_VERDICTS_MAX = 1024

#: The hooks that judge a response: a subclass that overrides one may judge a success otherwise.
_RESPONSE_HOOKS = (
    "wants_body",
    "parse_error",
    "classify_status",
    "classify_response",
    "retry_after",
)

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@attrs.frozen(kw_only=True)
class HTTPClassifier:
    """Plain HTTP semantics (RFC 9110, RFC 6585), with hooks for vendor adapters.

    Attributes:
        name: The vendor name recorded on classifications and errors.
        wall: Wall-clock time in Unix seconds, used only for an HTTP-date ``Retry-After`` on a
            response that carries no ``Date`` header. Injected so tests are deterministic.
    """

    #: Whether every response below 400 gets the plain verdict of its status, its body,
    #: headers and request unread. Then the ``Classify`` layer hands such a response the shared
    #: verdict without calling the hooks (four calls fewer per success). True here; a subclass
    #: that overrides a response hook (``wants_body``, ``parse_error``, ``classify_status``,
    #: ``classify_response``, ``retry_after``) has False unless it sets the attribute itself,
    #: as the bundled adapters do: their rules are all about error statuses.
    plain_successes: ClassVar[bool] = True

    name: str = "http"
    wall: Callable[[], float] = attrs.field(default=time.time, repr=False)
    # Verdicts without a vendor error, by status: frozen, so one serves every such response.
    _plain: dict[int, Classification] = attrs.field(init=False, factory=dict, repr=False, eq=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "plain_successes" not in cls.__dict__ and any(
            hook in cls.__dict__ for hook in _RESPONSE_HOOKS
        ):
            cls.plain_successes = False  # it may judge a success by more than its status

    def plain_verdicts(self) -> Mapping[int, Classification] | None:
        """The shared verdicts by status seen so far, when ``plain_successes``, else None.

        For the ``Classify`` layer: a status below 400 found here is the whole verdict on any
        response with it. (Statuses from 400 up may be here too, as ``classify_status`` gave
        them; they still go through every hook, since ``retry_after`` is added after it.)
        """
        return self._plain if self.plain_successes else None

    # -- hooks for adapters ---------------------------------------------------------------

    def prepare(self, request: httpx.Request) -> None:
        """Plain HTTP changes nothing about a request."""

    def is_idempotent(self, request: httpx.Request) -> bool:
        """RFC 9110 §9.2.2 idempotent methods."""
        return request.method in IDEMPOTENT_METHODS

    def wants_body(self, request: httpx.Request, response: httpx.Response) -> bool:
        """Error bodies are read (bounded) to classify them; success bodies never are."""
        return response.status_code >= 400

    def parse_error(self, response: httpx.Response, body: bytes) -> VendorError | None:
        """Parse the vendor's error envelope. Plain HTTP knows none: the reason phrase only."""
        if response.status_code < 400:
            return None
        return VendorError(status=response.status_code, message=_reason(response))

    def classify_status(
        self, request: httpx.Request, response: httpx.Response, error: VendorError | None
    ) -> Classification:
        """Map the status (and, in adapters, the parsed error) to a classification."""
        status = response.status_code
        if error is None:  # the common case (every success): one shared, immutable verdict
            cached = self._plain.get(status)
            if cached is not None:
                return cached
        kind, retryable, failure, executed = _STATUS_TABLE.get(status) or _by_class(status)
        verdict = Classification(
            kind=kind,
            retryable=retryable,
            counts_as_failure=failure,
            may_have_executed=executed,
            error=error,
            vendor=self.name,
            reason=f"HTTP {status}",
        )
        if error is None and len(self._plain) < _PLAIN_VERDICTS_MAX:
            self._plain[status] = verdict
        return verdict

    def error_class(self, classification: Classification) -> type[APIError] | None:
        """Plain HTTP has no vendor-specific errors: the per-kind default is used."""
        return None

    def login(self, request: httpx.Request) -> Login | None:
        """Plain HTTP knows no login endpoints."""
        return None

    def retry_after(self, response: httpx.Response) -> float | None:
        """Seconds the response asks us to wait, from ``Retry-After``, or None."""
        # Sent twice, the field arrives joined ("30, 30"): parse_retry_after takes the longest.
        value = response.headers.get("retry-after")
        if value is None:
            return None
        return parse_retry_after(value, date=response.headers.get("date"), wall=self.wall)

    # -- the Classifier protocol ----------------------------------------------------------

    def classify_response(
        self, request: httpx.Request, response: httpx.Response, body: bytes
    ) -> Classification:
        """Classify a response from its status, headers and the start of its body."""
        error = self.parse_error(response, body)
        verdict = self.classify_status(request, response, error)
        if verdict.retry_after is None and not verdict.kind.is_success:
            delay = self.retry_after(response)
            if delay is not None:
                verdict = attrs.evolve(verdict, retry_after=delay)
        return verdict

    def classify_exception(self, request: httpx.Request, exc: Exception) -> Classification:
        """Transport failures: ``timeout`` or ``network``, and whether they can have been sent."""
        sent = not isinstance(exc, _NOT_SENT)
        name = type(exc).__name__
        if isinstance(exc, httpx.LocalProtocolError):
            # Our side broke HTTP (an illegal header value, a body longer than its
            # Content-Length): sending it again fails the same way, and the server is not to
            # blame, so it is neither retried nor counted against the origin by the breaker.
            return Classification(
                kind=Kind.CLIENT_ERROR,
                may_have_executed=sent,
                vendor=self.name,
                reason=f"{name}: a local protocol error (maybe sent), not the server's",
            )
        if isinstance(exc, httpx.TimeoutException):
            kind = Kind.TIMEOUT
        elif isinstance(exc, httpx.TransportError | OSError):
            kind = Kind.NETWORK
        else:
            # Not a transport failure (a bug in a transport, a bad argument): never retried.
            return Classification(
                kind=Kind.CLIENT_ERROR, vendor=self.name, reason=f"unexpected {name}"
            )
        # A wrong URL scheme will not fix itself; everything else is transient.
        retryable = not isinstance(exc, httpx.UnsupportedProtocol)
        return Classification(
            kind=kind,
            retryable=retryable,
            counts_as_failure=retryable,
            may_have_executed=sent,
            vendor=self.name,
            reason=f"{name} ({'maybe sent' if sent else 'not sent'})",
        )


def _reason(response: httpx.Response) -> str:
    try:
        return response.reason_phrase or f"HTTP {response.status_code}"
    except (KeyError, ValueError):  # pragma: no cover - httpx falls back itself
        return f"HTTP {response.status_code}"


DEFAULT_CLASSIFIER = HTTPClassifier()
