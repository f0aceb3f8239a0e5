"""Names of the decisions layers report, and of their attributes: one namespace, one module.

Layers call ``call_context(request).emit(EVENT, {ATTRIBUTE: value, ...})``. With no listener
(no telemetry configured) that costs one empty-list check. Telemetry turns each event into a span
event on the call's INTERNAL span and a count in the ``resilience.events`` metric.
Attribute values never carry secrets: no URLs with queries, credentials, emails or bodies.
"""

from __future__ import annotations

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
    "RETRY_SCHEDULED",
    "VENDOR",
    "WAITED",
]

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

# Attributes that telemetry itself sets (on spans and metrics)
ATTEMPTS = "resilience.attempts"  # int: physical attempts a logical call made
WAITED = "resilience.waited"  # float seconds the call spent waiting (backoff and gates)
EVENT = "resilience.event"  # an event name above: the only attribute of resilience.events
