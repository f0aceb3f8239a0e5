"""``wrap``: put a stack under a client that already exists (one an SDK made, say)."""

from __future__ import annotations

import httpx

from ._stack import Stack, StackTransport

__all__ = ["wrap"]


def wrap(client: httpx.AsyncClient, stack: Stack) -> httpx.AsyncClient:
    """Wrap ``client``'s default transport and every mounted transport in ``stack``.

    The client keeps everything else (base_url, headers, auth, cookies, timeouts, event hooks):
    it is the same object, returned for convenience. All its transports share the stack's layers,
    so one breaker, one gate and one guard serve every mount.

    Raises:
        TypeError: ``client`` is not an ``httpx.AsyncClient``.
        ValueError: ``client`` is already wrapped (its transport is already a stack), which
            would multiply attempts.
    """
    if not isinstance(client, httpx.AsyncClient):
        raise TypeError(f"wrap() takes an httpx.AsyncClient, not {type(client).__name__}")
    if is_wrapped(client):
        raise ValueError("this client's transport is already a resilience stack")
    # httpx has no public way to replace a client's transports; these two attributes are the
    # documented-by-source seam (tests pin the behaviour, so an httpx change is caught).
    client._transport = stack.transport(client._transport)  # noqa: SLF001
    client._mounts = {  # noqa: SLF001
        pattern: None if transport is None else stack.transport(transport)
        for pattern, transport in client._mounts.items()  # noqa: SLF001
    }
    return client


def is_wrapped(client: httpx.AsyncClient) -> bool:
    """Whether ``client`` already sends through a resilience stack."""
    transports = [client._transport, *client._mounts.values()]  # noqa: SLF001
    return any(isinstance(t, StackTransport) for t in transports)
