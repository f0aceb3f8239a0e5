"""Helpers for the simulator tests: one server per module, a fresh simulator per test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.simulators import DialStackSimulator, RunningServer, Simulator, serve
from adapters.simulators._asgi import Receive, Scope, Send


class SwapApp:
    """An ASGI app that forwards to whichever simulator a test installed."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class Served:
    """A module's server: install a simulator with ``use``; ``url`` is the base URL."""

    def __init__(self, swap: SwapApp, running: RunningServer) -> None:
        self._swap = swap
        self.url = running.url

    def use(self, simulator: Simulator) -> Simulator:
        self._swap.app = simulator
        return simulator


@contextlib.contextmanager
def serving() -> Iterator[Served]:
    """Serve a :class:`SwapApp` for the ``with`` block (a test module's lifetime)."""
    swap = SwapApp()
    with serve(swap) as running:
        yield Served(swap, running)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving() as server:
        yield server


def test_swap_app_forwards_to_the_installed_simulator(served: Served) -> None:
    sim = served.use(DialStackSimulator())
    response = httpx.get(f"{served.url}/v1/calls", timeout=5)
    assert response.status_code == 401
    assert sim.count(path="/v1/calls", status=401) == 1
