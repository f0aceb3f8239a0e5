"""The two shapes of a layer: a policy that is configured once, and the transports it makes.

A :class:`Layer` holds settings and any shared state (a breaker's per-key circuits, a gate's
holds). ``layer.wrap(inner)`` returns an :class:`httpx.AsyncBaseTransport` that drives that
layer around ``inner``. One layer can wrap several transports (every mount of a client), and they
share its state.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TypeAlias

import attrs
import httpx

__all__ = ["Layer", "LayerLike", "LayerTransport"]


class LayerTransport(httpx.AsyncBaseTransport):
    """A transport that wraps another and closes it when closed."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self.inner.aclose()


class Layer(abc.ABC):
    """Base class of the resilience layers."""

    @abc.abstractmethod
    def wrap(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """Return a transport that applies this layer around ``inner``."""

    def describe(self) -> dict[str, object]:
        """Return the layer's name and settings, for logs and tests."""
        settings: dict[str, object] = {"layer": type(self).__name__}
        cls = type(self)
        if attrs.has(cls):
            for field in attrs.fields(cls):
                if not field.name.startswith("_") and field.repr is not False:
                    settings[field.name] = getattr(self, field.name)
        return settings

    def check(self, layers: tuple[LayerLike, ...]) -> None:  # noqa: B027 - optional hook
        """Refuse settings that contradict the other layers of a stack (ValueError)."""


#: Anything a Stack accepts: a Layer, or a factory ``inner -> transport`` such as a third-party
#: transport class that wraps another transport.
LayerLike: TypeAlias = Layer | Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]
