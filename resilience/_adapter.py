"""``Adapter``: a vendor's rules and standard stack, under one name.

Vendor packages (this project's ``adapters`` and third parties alike) expose one ``Adapter``
each and register it under the entry-point group ``resilience.adapters``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import httpx

from ._classifier import Classifier
from ._stack import Stack, StackTransport

__all__ = ["Adapter"]


@attrs.frozen(kw_only=True)
class Adapter:
    """A vendor adapter.

    Attributes:
        name: The registry name (``"dialstack"``).
        classifier: The vendor's :class:`~resilience.Classifier`.
        build_stack: ``(**overrides) -> Stack``, the vendor's standard stack. It raises
            ``TypeError`` for an override it does not know.
        description: One line for listings.
    """

    name: str
    classifier: Classifier
    build_stack: Callable[..., Stack] = attrs.field(repr=False)
    description: str = ""

    def stack(self, **overrides: Any) -> Stack:
        """Return the vendor's standard stack with ``overrides`` applied."""
        return self.build_stack(**overrides)

    def transport(
        self, inner: httpx.AsyncBaseTransport | None = None, **overrides: Any
    ) -> StackTransport:
        """Return the vendor's standard stack built around ``inner``."""
        return self.stack(**overrides).transport(inner)
