"""Exponential backoff with jitter, pure.

How it works: retry ``n`` (1 for the first retry) has a *ceiling*
``c(n) = min(maximum, initial * multiplier ** (n - 1))``; the jitter mode picks the delay from
that ceiling with an injected :class:`random.Random`. Nothing here sleeps or reads a clock:
the ``Retry`` layer asks for a delay and sleeps on its own clock.
"""

from __future__ import annotations

import math
import random
from typing import Literal

import attrs

__all__ = ["Backoff", "Jitter"]

Jitter = Literal["full", "equal", "decorrelated", "none"]

#: AWS's "decorrelated jitter" grows the previous delay by up to this factor.
DECORRELATED_GROWTH = 3.0


def _maximum_at_least_initial(
    instance: Backoff, attribute: attrs.Attribute[float], value: float
) -> None:
    if value < instance.initial:
        raise ValueError(f"Backoff maximum ({value}) must be >= initial ({instance.initial})")


def _finite(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"Backoff {attribute.name} must be finite, not {value}")


@attrs.frozen(kw_only=True)
class Backoff:
    """How long to wait before each retry.

    The ceiling of retry ``n`` (1-based) is ``c(n) = min(maximum, initial * multiplier**(n-1))``.
    The delay, by ``jitter``:

    - ``"full"`` (default): ``uniform(0, c(n))``. Spreads a crowd of clients the most, so a
      server that comes back is not hit by all of them at once.
    - ``"equal"``: ``c(n)/2 + uniform(0, c(n)/2)``: never less than half the ceiling.
    - ``"decorrelated"``: ``min(maximum, uniform(initial, 3 * previous))`` where ``previous``
      is the delay before it (``initial`` for the first retry); ``multiplier`` is not used.
    - ``"none"``: ``c(n)``, exactly.

    Every delay lies in ``[0, maximum]``.

    Attributes:
        initial: Ceiling of the first retry, seconds (default 0.5).
        maximum: Largest delay, seconds (default 30).
        multiplier: Growth of the ceiling per retry (default 2, doubling).
        jitter: ``"full"``, ``"equal"``, ``"decorrelated"`` or ``"none"``.
    """

    initial: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0.0), _finite], converter=float
    )
    maximum: float = attrs.field(
        default=30.0, validator=[_finite, _maximum_at_least_initial], converter=float
    )
    multiplier: float = attrs.field(
        default=2.0, validator=[attrs.validators.ge(1.0), _finite], converter=float
    )
    jitter: Jitter = attrs.field(
        default="full", validator=attrs.validators.in_(("full", "equal", "decorrelated", "none"))
    )

    def ceiling(self, retry: int) -> float:
        """``c(retry) = min(maximum, initial * multiplier**(retry-1))``, without overflow.

        Args:
            retry: The retry number, 1 for the first retry (values below 1 count as 1).
        """
        exponent = max(retry, 1) - 1
        if self.initial == 0.0:
            return 0.0
        if self.multiplier == 1.0 or exponent == 0:
            return min(self.maximum, self.initial)
        # Compare in log space so huge retry numbers never overflow.
        if math.log(self.initial) + exponent * math.log(self.multiplier) >= math.log(self.maximum):
            return self.maximum
        try:
            grown = self.initial * self.multiplier**exponent
        except OverflowError:  # a tiny (subnormal) initial times a power past the float range
            grown = math.exp(math.log(self.initial) + exponent * math.log(self.multiplier))
        return min(self.maximum, grown)

    def bounds(self, retry: int, previous: float | None = None) -> tuple[float, float]:
        """The smallest and largest delay :meth:`delay` can return for these arguments."""
        if self.jitter == "decorrelated":
            low = min(self.initial, self.maximum)
            high = min(self.maximum, max(low, DECORRELATED_GROWTH * self._previous(previous)))
            return (low, high)
        cap = self.ceiling(retry)
        if self.jitter == "full":
            return (0.0, cap)
        if self.jitter == "equal":
            return (cap / 2.0, cap)
        return (cap, cap)

    def delay(self, retry: int, rng: random.Random, previous: float | None = None) -> float:
        """The delay before retry ``retry`` (1-based), in seconds.

        Args:
            retry: The retry number, 1 for the first retry.
            rng: The source of randomness (injected, so tests are deterministic).
            previous: The previous delay, used by ``"decorrelated"`` only.

        Returns:
            A delay within :meth:`bounds`, never negative and never above ``maximum``.
        """
        if self.jitter == "decorrelated":
            # AWS's formula: the cap is on the result, not the range, so once 3 * previous is
            # past the maximum, the maximum itself is drawn that often.
            low = min(self.initial, self.maximum)
            top = max(low, DECORRELATED_GROWTH * self._previous(previous))
            return min(self.maximum, max(low, rng.uniform(low, top)))
        low, high = self.bounds(retry, previous)
        if low >= high:
            return high
        return min(high, max(low, rng.uniform(low, high)))

    def _previous(self, previous: float | None) -> float:
        if previous is None or not math.isfinite(previous) or previous < self.initial:
            return self.initial
        return previous
