"""Vendor adapters: each vendor's error rules and standard stack.

``adapters.get(name)`` returns an adapter by name; ``adapters.available()`` lists them. This
package's own adapters are always there; third-party ones register an
:class:`resilience.Adapter` under the entry-point group ``resilience.adapters``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging

import resilience

__all__ = ["ENTRY_POINT_GROUP", "available", "get"]

ENTRY_POINT_GROUP = "resilience.adapters"

# Our own adapters resolve without package metadata (a source checkout works too).
_log = logging.getLogger(__name__)

_BUILT_IN = {
    "dialstack": "adapters.dialstack",
    "get2dial": "adapters.get2dial",
    "dialnexa": "adapters.dialnexa",
}


def _entry_points() -> dict[str, object]:
    try:
        found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # noqa: BLE001 - another package's broken metadata must not hide ours
        _log.warning("could not read the %r entry points", ENTRY_POINT_GROUP, exc_info=True)
        return {}
    return {ep.name: ep for ep in found}


def available() -> list[str]:
    """Return the names of every adapter: this package's and the registered ones, sorted."""
    return sorted(set(_BUILT_IN) | set(_entry_points()))


def get(name: str) -> resilience.Adapter:
    """Return the adapter registered as ``name``.

    Raises:
        LookupError: No adapter has that name (the message lists those that do).
        TypeError: The entry point does not name an :class:`resilience.Adapter`.
        ImportError: The entry point's package failed to import (the message names it).
    """
    if name in _BUILT_IN:
        adapter = importlib.import_module(_BUILT_IN[name]).adapter
    else:
        ep = _entry_points().get(name)
        if ep is None:
            raise LookupError(f"no adapter named {name!r}; available: {', '.join(available())}")
        try:
            adapter = ep.load()  # type: ignore[attr-defined]
        except Exception as exc:
            where = getattr(ep, "value", "?")
            raise ImportError(f"adapter {name!r} ({where}) failed to load: {exc!r}") from exc
    if not isinstance(adapter, resilience.Adapter):
        raise TypeError(f"adapter {name!r} is {type(adapter).__name__}, not resilience.Adapter")
    return adapter
