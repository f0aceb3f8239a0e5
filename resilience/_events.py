"""Names of the decisions layers report, and of their attributes: one namespace, one module.

Layers call ``call_context(request).emit(EVENT, {ATTRIBUTE: value, ...})``. With no listener
(no telemetry configured) that costs one empty-list check. Telemetry turns each event into a span
event on the call's INTERNAL span and a count in the ``resilience.events`` metric.
Attribute values never carry secrets: no URLs with queries, credentials, emails or bodies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._classification import Classification

__all__ = [
    "ATTEMPT",
    "ATTEMPTS",
    "BREAKER_REJECTED",
    "BREAKER_STATE",
    "BREAKER_STATE_CHANGED",
    "BUDGET_EXHAUSTED",
    "DEADLINE_EXCEEDED",
    "DELAY",
    "DELAY_SOURCE",
    "ERROR_CODE",
    "EVENT",
    "GATE_REJECTED",
    "GATE_WAIT",
    "KEY",
    "KIND",
    "LOCKOUT_ENGAGED",
    "LOCKOUT_REJECTED",
    "PREVIOUS_STATE",
    "REASON",
    "RETRY_AFTER",
    "RETRY_GIVEN_UP",
    "REQUEST_ID",
    "RETRY_SCHEDULED",
    "VENDOR",
    "WAITED",
]  # names only; vendor_ids() below is a helper for the layers that emit them

# Events
RETRY_SCHEDULED = "resilience.retry.scheduled"
RETRY_GIVEN_UP = "resilience.retry.given_up"
BUDGET_EXHAUSTED = "resilience.retry.budget_exhausted"
DEADLINE_EXCEEDED = "resilience.deadline.exceeded"
GATE_WAIT = "resilience.gate.wait"
GATE_REJECTED = "resilience.gate.rejected"
BREAKER_STATE_CHANGED = "resilience.breaker.state_changed"
BREAKER_REJECTED = "resilience.breaker.rejected"
LOCKOUT_ENGAGED = "resilience.lockout.engaged"
LOCKOUT_REJECTED = "resilience.lockout.rejected"

# Attributes
ATTEMPT = "resilience.attempt"  # int, 1-based
DELAY = "resilience.delay"  # float seconds
DELAY_SOURCE = "resilience.delay.source"  # "retry_after" | "backoff"
RETRY_AFTER = "resilience.retry_after"  # float seconds
KIND = "resilience.kind"  # Kind value
REASON = "resilience.reason"  # short, secret-free text
KEY = "resilience.key"  # a *hashed* key (never an origin with credentials, never an email)
BREAKER_STATE = "resilience.breaker.state"  # "closed" | "open" | "half_open"
PREVIOUS_STATE = "resilience.breaker.previous_state"
VENDOR = "resilience.vendor"
REQUEST_ID = "resilience.vendor.request_id"  # the vendor's id of one response (X-Request-Id)
ERROR_CODE = "resilience.vendor.error_code"  # the vendor's stable error code


def vendor_ids(verdict: Classification) -> dict[str, str]:
    """The vendor's request id and stable error code on ``verdict``, for support tickets.

    Neither is a secret: the vendor made both to be quoted back to it. The id is cut to 128
    characters, since a header of any size may carry it.
    """
    error = verdict.error
    if error is None:
        return {}
    ids = {}
    if error.request_id:
        ids[REQUEST_ID] = error.request_id[:128]
    if error.code:
        ids[ERROR_CODE] = error.code
    return ids


# Attributes that telemetry itself sets (on spans and metrics)
ATTEMPTS = "resilience.attempts"  # int: physical attempts a logical call made
WAITED = "resilience.waited"  # float seconds the call spent waiting (backoff and gates)
EVENT = "resilience.event"  # an event name above: the only attribute of resilience.events
