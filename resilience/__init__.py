"""Resilience layers for httpx.

Classify, honour Retry-After, back off, break circuits, guard logins. Compose them with
:class:`Stack`; vendor rules live in the ``adapters`` package.
"""

from __future__ import annotations

from ._adapter import Adapter
from ._backoff import Backoff
from ._breaker import BreakerStatistics, CircuitBreaker, CircuitState, CircuitStatistics
from ._budget import RetryBudget, RetryBudgetStatistics
from ._classification import Classification, Kind, Login, VendorError
from ._classifier import IDEMPOTENT_METHODS, Classifier, HTTPClassifier, json_object
from ._classify import Classify
from ._clock import AnyioClock, Clock
from ._exceptions import (
    AccountLockedError,
    APIError,
    AuthError,
    BadRequestError,
    CircuitOpenError,
    ClientError,
    ConflictError,
    DeadlineExceededError,
    ForbiddenError,
    LockedOutError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    RequestTimeoutError,
    ResilienceError,
    ServerError,
    TooManyRequestsError,
    ValidationError,
)
from ._express import ExpressTransport
from ._gate import RetryAfterGate, RetryAfterGateStatistics
from ._layer import Layer, LayerTransport
from ._lockout import LockoutGuard, LockoutStatistics
from ._outcome import Outcome, outcome, raise_for_error
from ._redact import fingerprint
from ._retry import Retry
from ._retry_after import (
    parse_http_date,
    parse_ratelimit_reset,
    parse_retry_after,
    rate_limit_delay,
)
from ._stack import Stack, StackTransport
from ._store import MemoryStore, StateStore, StoreStatistics
from ._telemetry import Telemetry
from ._wrap import is_wrapped, wrap

__all__ = [
    "APIError",
    "AccountLockedError",
    "Adapter",
    "AnyioClock",
    "AuthError",
    "Backoff",
    "BadRequestError",
    "BreakerStatistics",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "CircuitStatistics",
    "Classification",
    "Classifier",
    "Classify",
    "ClientError",
    "Clock",
    "ConflictError",
    "DeadlineExceededError",
    "ExpressTransport",
    "ForbiddenError",
    "HTTPClassifier",
    "IDEMPOTENT_METHODS",
    "Kind",
    "Layer",
    "LayerTransport",
    "LockedOutError",
    "LockoutGuard",
    "LockoutStatistics",
    "Login",
    "MemoryStore",
    "NotFoundError",
    "Outcome",
    "RateLimitedError",
    "RejectedError",
    "RequestTimeoutError",
    "ResilienceError",
    "Retry",
    "RetryAfterGate",
    "RetryAfterGateStatistics",
    "RetryBudget",
    "RetryBudgetStatistics",
    "ServerError",
    "Stack",
    "StackTransport",
    "StateStore",
    "StoreStatistics",
    "Telemetry",
    "TooManyRequestsError",
    "ValidationError",
    "VendorError",
    "fingerprint",
    "is_wrapped",
    "json_object",
    "outcome",
    "parse_http_date",
    "parse_ratelimit_reset",
    "parse_retry_after",
    "raise_for_error",
    "rate_limit_delay",
    "wrap",
]
