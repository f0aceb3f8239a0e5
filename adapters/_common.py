"""What the three adapters share: tolerant envelope reading and the standard stack builder."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import resilience

__all__ = ["OVERRIDES", "builder", "mapping", "standard_stack", "text", "texts"]


def text(value: object) -> str | None:
    """``value`` if it is a non-empty string, else None (wrong types never crash a parser)."""
    return value if isinstance(value, str) and value else None


def texts(value: object) -> tuple[str, ...]:
    """A string or a list of strings as a tuple of strings; anything else as ``()``."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str) and item)
    return ()


def mapping(value: object) -> Mapping[str, object]:
    """``value`` if it is a JSON object, else an empty mapping."""
    return value if isinstance(value, dict) else {}


#: The overrides every vendor's ``stack()`` / ``transport()`` accepts.
OVERRIDES = frozenset(
    {
        "attempts",
        "backoff",
        "max_retry_after",
        "deadline",
        "attempt_timeout",
        "max_wait",
        "clock",
        "rng",
        "breaker",
        "guard",
    }
)


def standard_stack(
    classifier: resilience.Classifier,
    *,
    vendor: str,
    defaults: Mapping[str, Any],
    login_guard: bool,
    overrides: Mapping[str, Any],
) -> resilience.Stack:
    """Build ``Retry > RetryAfterGate > [LockoutGuard] > CircuitBreaker > Classify``.

    Args:
        classifier: The vendor's classifier.
        vendor: The vendor's name, for error messages.
        defaults: The vendor's own advice for ``attempts``, ``backoff`` (the keyword arguments of
            a ``Backoff``) and ``max_retry_after``.
        login_guard: Whether the vendor locks accounts after failed logins.
        overrides: What the caller passed: any of :data:`OVERRIDES`. ``breaker`` and ``guard``
            take a ready ``CircuitBreaker`` / ``LockoutGuard`` (to share one across stacks); a
            ``guard`` given to a vendor without logins is in its stack all the same.

    Raises:
        TypeError: An override this function does not know (never silently ignored).
    """
    unknown = sorted(set(overrides) - OVERRIDES)
    if unknown:
        known = ", ".join(sorted(OVERRIDES))
        raise TypeError(f"{vendor}.stack() got unknown override(s) {unknown}; known: {known}")
    settings = {**defaults, **overrides}
    deadline, cap = settings.get("deadline"), settings.get("max_retry_after")
    if deadline is not None and cap is not None and overrides.get("max_retry_after") is None:
        # The vendor's Retry-After cap is a default, not the caller's choice: a shorter deadline
        # lowers it, as Retry's own default does, instead of being refused as a contradiction.
        settings["max_retry_after"] = min(cap, deadline)
    if isinstance(settings.get("backoff"), Mapping):  # the vendor's advice, kept as data
        settings["backoff"] = resilience.Backoff(**settings["backoff"])
    clock = settings.get("clock")
    retry_options = {
        name: settings[name]
        for name in ("attempts", "backoff", "max_retry_after", "deadline", "attempt_timeout", "rng")
        if settings.get(name) is not None
    }
    gate_options = (
        {"max_wait": settings["max_wait"]} if settings.get("max_wait") is not None else {}
    )
    layers: list[resilience.Layer] = [
        resilience.Retry(clock=clock, **retry_options),
        resilience.RetryAfterGate(clock=clock, **gate_options),
    ]
    guard = settings.get("guard")
    if login_guard or guard is not None:  # a guard asked for is used, whatever the vendor
        layers.append(guard or resilience.LockoutGuard(clock=clock))
    layers.append(settings.get("breaker") or resilience.CircuitBreaker(clock=clock))
    layers.append(resilience.Classify(classifier))
    return resilience.Stack(*layers)


def builder(
    classifier: resilience.Classifier,
    *,
    vendor: str,
    defaults: Mapping[str, Any],
    login_guard: bool = False,
) -> Callable[..., resilience.Stack]:
    """Return the vendor's ``stack(**overrides)`` function."""

    def stack(**overrides: Any) -> resilience.Stack:
        return standard_stack(
            classifier,
            vendor=vendor,
            defaults=defaults,
            login_guard=login_guard,
            overrides=overrides,
        )

    stack.__doc__ = f"The {vendor} standard stack (see the module docstring for its defaults)."
    return stack
