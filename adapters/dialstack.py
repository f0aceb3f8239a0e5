"""DialStack: branch on ``code``, never on the ``error`` text; mutations are idempotent by key.

What the adapter encodes (``../shared/vendor-docs/dialstack-errors.md`` and the further facts):

- Envelope ``{"error": str, "code": str?, "details": {...}?}``, and the Partner API's nested
  ``{"error": {"code": ..., "message": ...}}``; both are parsed into a ``VendorError``.
- Only the documented stable codes count as codes. Any other ``code`` is legacy or
  platform-internal: it is *not* put in ``VendorError.code`` (the reason says it was ignored), and
  the HTTP status decides, as the docs say to do when no code is present.
- The status table: 400/401/403/404/409/422 are never retried; 429 waits for ``Retry-After``;
  5xx is retried with exponential backoff. ``generation_failed`` (500) is "safe to retry".
- Every mutation is keyed by an operation ID: POST and PATCH requests get one ``Idempotency-Key``
  per logical call (unless the caller set one), the same key on every attempt, so resending them
  after a 5xx or a read timeout is safe.
- ``X-Request-Id`` is kept on the error (``VendorError.request_id``).
- A typed exception per stable code; ``InvalidPaginationError`` means "restart from page one",
  which :func:`paginate` does.

Standard stack (the vendor's own advice): 5 attempts, backoff from 1 s doubling to 60 s with full
jitter, ``Retry-After`` honoured up to 60 s, a Retry-After gate and a circuit breaker per origin.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar

import attrs
import httpx

import resilience
from resilience import Classification, Kind, VendorError

from ._common import builder, mapping, text

__all__ = [
    "STABLE_CODES",
    "CredentialsNotFoundError",
    "DialStackClassifier",
    "GenerationFailedError",
    "InvalidConfigurationError",
    "InvalidPaginationError",
    "InvalidSandboxPhoneNumberError",
    "PageError",
    "SandboxFeatureUnsupportedError",
    "UnsupportedVendorError",
    "ValidationFailedError",
    "adapter",
    "classifier",
    "paginate",
    "stack",
    "transport",
]


class ValidationFailedError(resilience.ValidationError):
    """``validation_error``: the body failed validation; ``details`` has field-level reasons."""


class InvalidPaginationError(resilience.BadRequestError):
    """``invalid_pagination``: the cursor is malformed or expired. Restart from the first page."""


class InvalidSandboxPhoneNumberError(resilience.ValidationError):
    """``invalid_sandbox_phone_number``: not a valid sandbox number for this platform."""


class SandboxFeatureUnsupportedError(resilience.BadRequestError):
    """``sandbox_feature_unsupported``: not available in sandbox mode for this platform."""


class UnsupportedVendorError(resilience.BadRequestError):
    """``unsupported_vendor``: the phone vendor/model is not supported for provisioning."""


class InvalidConfigurationError(resilience.ValidationError):
    """``invalid_configuration``: the provisioning request lacks required device fields."""


class CredentialsNotFoundError(resilience.NotFoundError):
    """``credentials_not_found``: no SIP credentials exist for this endpoint."""


class GenerationFailedError(resilience.ServerError):
    """``generation_failed``: the provisioning file could not be generated. Safe to retry."""


#: Stable code -> (documented status, kind, exception). Codes not here are not stable.
STABLE_CODES: Mapping[str, tuple[int, Kind, type[resilience.APIError]]] = {
    "validation_error": (400, Kind.VALIDATION, ValidationFailedError),
    "invalid_pagination": (400, Kind.BAD_REQUEST, InvalidPaginationError),
    "invalid_sandbox_phone_number": (400, Kind.VALIDATION, InvalidSandboxPhoneNumberError),
    "sandbox_feature_unsupported": (400, Kind.BAD_REQUEST, SandboxFeatureUnsupportedError),
    "unsupported_vendor": (400, Kind.BAD_REQUEST, UnsupportedVendorError),
    "invalid_configuration": (400, Kind.VALIDATION, InvalidConfigurationError),
    "credentials_not_found": (404, Kind.NOT_FOUND, CredentialsNotFoundError),
    "generation_failed": (500, Kind.SERVER_ERROR, GenerationFailedError),
}

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEYED_METHODS = frozenset({"POST", "PATCH"})


def _new_key() -> str:
    return str(uuid.uuid4())


@attrs.frozen(kw_only=True)
class DialStackClassifier(resilience.HTTPClassifier):
    """DialStack's error rules.

    Attributes:
        idempotency_key: Makes a fresh ``Idempotency-Key`` (a UUID4 by default).
    """

    #: Every rule here is about an error status: a success is judged by its status alone.
    plain_successes: ClassVar[bool] = True

    name: str = "dialstack"
    idempotency_key: Callable[[], str] = attrs.field(default=_new_key, repr=False)

    def prepare(self, request: httpx.Request) -> None:
        """Give a POST or PATCH its idempotency key, once: every attempt then sends the same."""
        if request.method in _KEYED_METHODS and IDEMPOTENCY_HEADER not in request.headers:
            request.headers[IDEMPOTENCY_HEADER] = self.idempotency_key()

    def is_idempotent(self, request: httpx.Request) -> bool:
        """Idempotent methods, and any request carrying an ``Idempotency-Key``."""
        return super().is_idempotent(request) or IDEMPOTENCY_HEADER in request.headers

    def parse_error(self, response: httpx.Response, body: bytes) -> VendorError | None:
        """Parse the flat or the nested (Partner API) envelope; tolerate anything else."""
        status = response.status_code
        if status < 400:
            return None
        request_id = response.headers.get("x-request-id")
        envelope = resilience.json_object(body) or {}
        error = envelope.get("error")
        if isinstance(error, dict):  # Partner API: {"error": {"code", "message"}}
            code, message, details = error.get("code"), error.get("message"), error.get("details")
        else:
            code, message, details = envelope.get("code"), error, envelope.get("details")
        message_text = text(message) or response.reason_phrase or f"HTTP {status}"
        return VendorError(
            status=status,
            code=text(code),  # kept raw here; classify_status decides whether it is stable
            message=message_text,
            messages=(message_text,),
            details=mapping(details),
            request_id=request_id,
        )

    def classify_status(
        self, request: httpx.Request, response: httpx.Response, error: VendorError | None
    ) -> Classification:
        """Stable codes decide; otherwise the status does (unstable codes are dropped)."""
        plain = super().classify_status(request, response, error)
        if response.status_code == 403:
            # The docs: a 403 usually means the DialStack-Account header is wrong or missing.
            plain = attrs.evolve(plain, reason=f"{plain.reason}; check DialStack-Account")
        if error is None or error.code is None:
            return plain
        stable = STABLE_CODES.get(error.code)
        if stable is None:
            return attrs.evolve(
                plain,
                error=attrs.evolve(error, code=None),
                reason=f"{plain.reason}; code {error.code!r} is not stable, ignored",
            )
        documented, kind, _ = stable
        if response.status_code != documented:
            # A stable code under another status than its own: the status is the safer guide.
            return attrs.evolve(
                plain, reason=f"{plain.reason}; {error.code} is documented for HTTP {documented}"
            )
        return attrs.evolve(plain, kind=kind, reason=f"{plain.reason} {error.code}")

    def error_class(self, classification: Classification) -> type[resilience.APIError] | None:
        """The typed exception of a stable code (under its documented status)."""
        error = classification.error
        stable = STABLE_CODES.get(error.code or "") if error is not None else None
        if error is None or stable is None or stable[0] != error.status:
            return None
        return stable[2]


classifier = DialStackClassifier()

#: The vendor's advice: start at 1 s, double up to ~60 s, cap at ~5 attempts; Retry-After <= 60 s.
DEFAULTS: Mapping[str, Any] = {
    "attempts": 5,
    "backoff": {"initial": 1.0, "maximum": 60.0, "multiplier": 2.0, "jitter": "full"},
    "max_retry_after": 60.0,
}

stack = builder(classifier, vendor="dialstack", defaults=DEFAULTS)


def transport(
    inner: httpx.AsyncBaseTransport | None = None, **overrides: Any
) -> httpx.AsyncBaseTransport:
    """The standard DialStack stack around ``inner`` (default ``httpx.AsyncHTTPTransport()``)."""
    return stack(**overrides).transport(inner)


adapter = resilience.Adapter(
    name="dialstack",
    classifier=classifier,
    build_stack=stack,
    description="DialStack REST API: stable error codes, idempotent mutations",
)


async def paginate(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    items: str = "data",
    restarts: int = 1,
) -> AsyncIterator[object]:
    """Yield every item of a cursor-paginated list, following ``next_page_url``.

    On ``invalid_pagination`` (the cursor expired) it restarts from the first page, as the docs
    say, at most ``restarts`` times; items already yielded may then be yielded again.

    Raises:
        resilience.APIError: Any other error response (typed by its stable code).
        PageError: A page that is not a JSON object with a list under ``items``, or a
            ``next_page_url`` that leads back to a page already read (which would loop forever).
    """
    left = restarts
    next_url: str | None = url
    first = True
    seen: set[str] = set()
    while next_url is not None:
        response = await client.get(next_url, params=params if first else None)
        first = False
        try:
            resilience.raise_for_error(response)
        except InvalidPaginationError:
            if left <= 0:
                raise
            left -= 1
            next_url, first = url, True
            seen.clear()
            continue
        found, next_url = _page(response, items)
        for item in found:
            yield item
        seen.add(str(response.request.url))
        if next_url is not None and str(response.request.url.join(next_url)) in seen:
            # Not the URL itself: its query may carry a key.
            raise PageError(f"next_page_url of page {len(seen)} leads back to a page already read")


class PageError(ValueError):
    """A list page that cannot be followed: not the documented ``{"data": [...], ...}``."""


def _page(response: httpx.Response, items: str) -> tuple[list[object], str | None]:
    """A list page's items and ``next_page_url``; PageError for anything else."""
    page = resilience.json_object(response.content)
    if page is None:
        raise PageError(f"HTTP {response.status_code} list page is not a JSON object")
    found = page.get(items)
    if not isinstance(found, list):
        what = type(found).__name__ if items in page else "nothing"
        raise PageError(f"list page has {what} under {items!r}, not a list")
    return found, text(page.get("next_page_url"))
