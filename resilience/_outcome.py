"""What a caller can learn about a finished call: :func:`outcome` and :func:`raise_for_error`."""

from __future__ import annotations

import attrs
import httpx

from ._body import DEFAULT_PEEK_LIMIT
from ._classification import Classification
from ._classifier import DEFAULT_CLASSIFIER
from ._context import CLASSIFICATION_KEY, CONTEXT_KEY, CallContext
from ._exceptions import api_error_class

__all__ = ["Outcome", "outcome", "raise_for_error"]


@attrs.frozen(kw_only=True)
class Outcome:
    """How a logical call ended.

    Attributes:
        classification: The verdict on the response that was returned.
        attempts: Physical attempts made (1 when nothing was retried).
        waited: Seconds spent waiting between attempts and at gates.
    """

    classification: Classification
    attempts: int = 1
    waited: float = 0.0


def _request_of(response: httpx.Response) -> httpx.Request | None:
    try:
        return response.request
    except RuntimeError:
        return None


def _read_body(response: httpx.Response) -> bytes:
    """The start of the body if it was read into memory, else b"".

    A body iterated without ``read()`` is consumed yet was never held: there is none to read.
    """
    if not response.is_stream_consumed:
        return b""
    try:
        return response.content[:DEFAULT_PEEK_LIMIT]
    except httpx.ResponseNotRead:
        return b""


def outcome(response: httpx.Response) -> Outcome:
    """Return the :class:`Outcome` of the call that produced ``response``.

    A response that did not pass through a stack is classified on the spot with plain HTTP
    semantics, from its status and headers (and its body, only if it was already read). A
    response with a verdict and no call context was one attempt with no wait: the express
    lane's plain success (see ``resilience._express``).
    """
    ctx = response.extensions.get(CONTEXT_KEY)
    verdict = response.extensions.get(CLASSIFICATION_KEY)
    if not isinstance(verdict, Classification):
        request = _request_of(response) or httpx.Request("GET", "http://unknown.invalid/")
        classifier = ctx.classifier if isinstance(ctx, CallContext) else DEFAULT_CLASSIFIER
        verdict = classifier.classify_response(request, response, _read_body(response))
    if isinstance(ctx, CallContext):
        return Outcome(classification=verdict, attempts=max(ctx.attempts, 1), waited=ctx.waited)
    return Outcome(classification=verdict)


def raise_for_error(response: httpx.Response) -> httpx.Response:
    """Raise the :class:`~resilience.APIError` subclass for an error response.

    Returns:
        ``response`` itself when its classification is a success (2xx, 3xx, 304).

    Raises:
        APIError: One subclass per :class:`~resilience.Kind`, or the adapter's own subclass
            (for example one per stable vendor error code).
    """
    verdict = outcome(response).classification
    if verdict.is_success:
        return response
    ctx = response.extensions.get(CONTEXT_KEY)
    classifier = ctx.classifier if isinstance(ctx, CallContext) else DEFAULT_CLASSIFIER
    if _request_of(response) is None:
        response.request = httpx.Request("GET", "http://unknown.invalid/")
    raise api_error_class(verdict, classifier.error_class)(response, verdict)
