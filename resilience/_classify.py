"""The ``Classify`` layer: runs the classifier on every attempt.

It belongs innermost, next to the network, so every physical attempt is classified once and the
outer layers (breaker, gate, retry) decide on the same verdict.
"""

from __future__ import annotations

import attrs
import httpx

from ._body import DEFAULT_PEEK_LIMIT, decoded_prefix, peek
from ._classification import Classification
from ._classifier import DEFAULT_CLASSIFIER, Classifier
from ._context import CLASSIFICATION_KEY, CONTEXT_KEY, CallContext, call_context
from ._exceptions import RejectedError
from ._layer import Layer, LayerTransport
from ._redact import redact_verdict

__all__ = ["Classify"]


@attrs.define(kw_only=False)
class Classify(Layer):
    """Classify every attempt with ``classifier``.

    Attributes:
        classifier: The vendor's rules; plain RFC 9110 semantics by default.
        peek_limit: Bytes of an error body read to classify it (64 KiB). The caller can still
            read the whole body; success bodies are never read here.
    """

    classifier: Classifier = DEFAULT_CLASSIFIER
    peek_limit: int = attrs.field(
        default=DEFAULT_PEEK_LIMIT, kw_only=True, validator=attrs.validators.ge(0)
    )

    def wrap(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """Return a transport that classifies each attempt through ``inner``."""
        return _ClassifyTransport(inner, self)


class _ClassifyTransport(LayerTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, layer: Classify) -> None:
        super().__init__(inner)
        self._classifier = layer.classifier
        self._limit = layer.peek_limit
        # Verdicts that depend on the status alone (see HTTPClassifier.plain_successes).
        verdicts = getattr(layer.classifier, "plain_verdicts", None)
        self._plain = verdicts() if callable(verdicts) else None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ctx = request.extensions.get(CONTEXT_KEY) or call_context(request)
        classifier = ctx.classifier = self._classifier
        classifier.prepare(request)
        try:
            response = await self.inner.handle_async_request(request)
        except RejectedError:
            raise  # a decision of a layer below, not an attempt
        except Exception as exc:
            self.raised(request, ctx, exc)
            raise
        # A success judged by its status alone (HTTPClassifier.plain_successes) needs no hook.
        status, plain = response.status_code, self._plain
        verdict = plain.get(status) if plain is not None and status < 400 else None
        if verdict is None:
            verdict = await self.judge(request, ctx, response)
        extensions = response.extensions
        extensions[CLASSIFICATION_KEY] = verdict
        extensions[CONTEXT_KEY] = ctx
        ctx.last, ctx.last_source = verdict, response  # ctx.record(), on the hot path
        return response

    def raised(self, request: httpx.Request, ctx: CallContext, exc: Exception) -> None:
        """Classify and record an attempt that raised ``exc`` (the caller re-raises it)."""
        try:
            verdict = self._classifier.classify_exception(request, exc)
        except Exception as bug:  # noqa: BLE001 - an adapter bug must not hide the failure
            verdict = _fallback(DEFAULT_CLASSIFIER.classify_exception(request, exc), bug)
        ctx.record(exc, verdict)

    async def judge(
        self, request: httpx.Request, ctx: CallContext, response: httpx.Response
    ) -> Classification:
        """The verdict on a response that its status alone does not settle.

        Reads up to ``peek_limit`` bytes of the body if the classifier wants it; an error while
        reading is the attempt's failure (classified, recorded and raised).
        """
        classifier = self._classifier
        body = b""
        try:
            if classifier.wants_body(request, response):
                # The response was returned to us, so we own it until we return it.
                raw = await peek(response, self._limit)
                body = decoded_prefix(response.headers, raw, self._limit)
        except RejectedError:
            raise
        except Exception as exc:
            self.raised(request, ctx, exc)
            raise
        try:
            verdict = classifier.classify_response(request, response, body)
        except Exception as bug:  # noqa: BLE001 - an adapter bug must not lose the response
            plain_verdict = DEFAULT_CLASSIFIER.classify_response(request, response, b"")
            verdict = _fallback(plain_verdict, bug)
        if verdict.error is not None:  # a vendor may echo what it was sent
            verdict = redact_verdict(verdict, request)
        return verdict


def _fallback(plain: Classification, bug: Exception) -> Classification:
    return attrs.evolve(plain, reason=f"{plain.reason}; classifier failed: {type(bug).__name__}")
