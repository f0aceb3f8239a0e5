"""Running one vendor's workload against its simulator, in one mode, and tallying the result."""

from __future__ import annotations

import collections
import functools
import itertools
from collections.abc import Awaitable, Callable
from typing import Literal

import anyio
import attrs
import httpx

import adapters
import resilience
from adapters.simulators import SIMULATORS, Simulator

from . import _workloads as work
from ._naive import NaiveRetryTransport
from ._scenario import Scenario

__all__ = ["Mode", "ModeResult", "Run", "make_simulator"]

Mode = Literal["naive", "stack"]
MODE_TITLES = {"naive": "plain httpx + naive retry", "stack": "standard stack"}

WORKERS = 3
PAUSE = 0.1  # seconds between one worker's operations
WRONG_LOGIN_EVERY = 0.2
PERSON_LOGIN_EVERY = 3.0


def make_simulator(vendor: str) -> Simulator:
    """A simulator tuned for a short demo: calls end quickly, limits are reachable."""
    if vendor == "dialnexa":
        return SIMULATORS[vendor](  # type: ignore[call-arg]
            concurrency_limit=4, call_duration=0.5, rate_limit=300, rate_window=10.0
        )
    return SIMULATORS[vendor]()


@attrs.frozen(kw_only=True)
class ModeResult:
    """What one vendor's workload did in one mode."""

    vendor: str
    mode: Mode
    requests_sent: int
    operations: int
    succeeded: int
    refused_circuit_open: int
    refused_rate_limited: int
    #: The looping integration's logins refused without sending: by the guard, and otherwise.
    refused_locked_out: int
    logins_refused_otherwise: int
    duplicated_calls: int
    failed_logins: int
    lockouts: int
    people_locked_out: int
    rate_limited: int
    outage_requests: int
    recover_seconds: float | None


@attrs.define
class Run:
    """One vendor, one mode: its simulator, its client, and the client-side tallies."""

    vendor: str
    mode: Mode
    simulator: Simulator
    url: str
    #: Simulator time when the workload started (fault windows are relative to it).
    started: float = 0.0
    token: str | None = None
    _client: httpx.AsyncClient = attrs.field(init=False, repr=False)
    _plain: httpx.AsyncClient = attrs.field(init=False, repr=False)
    operations: int = 0
    succeeded: int = 0
    refused: collections.Counter[str] = attrs.field(factory=collections.Counter)
    refused_logins: collections.Counter[str] = attrs.field(factory=collections.Counter)
    people_locked_out: int = 0
    success_times: list[float] = attrs.field(factory=list)
    #: When each operation started (simulator time): did the client meet the outage at all?
    start_times: list[float] = attrs.field(factory=list)

    def client(self) -> httpx.AsyncClient:
        """The client under test: naive retries, or the vendor's standard stack."""
        inner = httpx.AsyncHTTPTransport()
        transport = (
            NaiveRetryTransport(inner)
            if self.mode == "naive"
            else adapters.get(self.vendor).transport(inner)
        )
        return httpx.AsyncClient(base_url=self.url, transport=transport, timeout=5.0)

    async def _operate(
        self, client: httpx.AsyncClient, operation: work.Operation, auth: dict[str, str]
    ) -> None:
        self.operations += 1
        self.start_times.append(self.simulator.now())
        try:
            response = await operation(client, auth)
        except resilience.RejectedError as refusal:
            self.refused[type(refusal).__name__] += 1
            return
        except httpx.HTTPError:
            return
        if response.status_code < 400:
            self.succeeded += 1
            self.success_times.append(self.simulator.now())

    async def setup(self) -> None:
        """Make the clients and log the service account in, before any fault is armed.

        Making a client builds an SSL context (tens of milliseconds): done here, not on the clock.
        """
        self._client = self.client()
        self._plain = httpx.AsyncClient(base_url=self.url)
        if self.vendor == "get2dial":
            self.token = await work.get2dial_token(self._plain)

    async def drive(self, scenario: Scenario, until: float) -> None:
        """Run the workload until the simulator's clock reads ``until``."""
        client, plain = self._client, self._plain
        auth = work.headers_for(self.vendor, self.token)
        try:
            async with anyio.create_task_group() as tasks:
                for n in range(WORKERS):
                    tasks.start_soon(self._worker, client, auth, n, until)
                if self.vendor == "get2dial" and scenario.wrong_password:
                    wrong = functools.partial(self._wrong_login, client)
                    tasks.start_soon(self._every, WRONG_LOGIN_EVERY, until, wrong)
                    tasks.start_soon(
                        self._every,
                        PERSON_LOGIN_EVERY,
                        until,
                        functools.partial(self._person, plain),
                    )
        finally:
            await client.aclose()
            await plain.aclose()

    async def _worker(
        self, client: httpx.AsyncClient, auth: dict[str, str], n: int, until: float
    ) -> None:
        operations = work.OPERATIONS[self.vendor]
        for operation in itertools.islice(itertools.cycle(operations), n, None):
            if self.simulator.now() >= until:
                return
            await self._operate(client, operation, auth)
            await anyio.sleep(PAUSE)

    async def _every(
        self, period: float, until: float, action: Callable[[], Awaitable[None]]
    ) -> None:
        while self.simulator.now() < until:
            await action()
            await anyio.sleep(period)

    async def _wrong_login(self, client: httpx.AsyncClient) -> None:
        try:
            response = await work.wrong_password_login(client)
        except resilience.RejectedError as refusal:
            self.refused_logins[type(refusal).__name__] += 1
            return
        await response.aclose()

    async def _person(self, plain: httpx.AsyncClient) -> None:
        response = await work.person_login(plain)
        if response.status_code == 403:
            self.people_locked_out += 1

    def result(self, outage: tuple[float, float] | None) -> ModeResult:
        """Tally the client's and the simulator's counts.

        Args:
            outage: The outage's start and end in simulator time, if the scenario has one.

        What the simulator received is counted from its records, from the workload's start and
        without the person's own logins: the client under test alone.
        """
        counters = self.simulator.counters
        received = [
            r
            for r in self.simulator.requests
            if r.time >= self.started and work.PERSON_HEADER.lower() not in r.headers
        ]
        outage_requests = sum(r.fault == "outage" for r in received)
        recover = None
        if outage is not None:
            start, end = outage
            met = outage_requests or any(start <= t < end for t in self.start_times)
            after = [t - end for t in self.success_times if t >= end]
            recover = min(after) if after and met else None  # none: it never met the outage
        refused_logins = self.refused_logins
        return ModeResult(
            vendor=self.vendor,
            mode=self.mode,
            requests_sent=len(received),
            operations=self.operations,
            succeeded=self.succeeded,
            refused_circuit_open=self.refused["CircuitOpenError"],
            refused_rate_limited=self.refused["RateLimitedError"],
            refused_locked_out=refused_logins["LockedOutError"],
            logins_refused_otherwise=sum(refused_logins.values())
            - refused_logins["LockedOutError"],
            duplicated_calls=counters.duplicated_calls,
            failed_logins=sum(counters.failed_logins.values()),
            lockouts=counters.lockouts,
            people_locked_out=self.people_locked_out,
            rate_limited=sum(r.status == 429 for r in received),
            outage_requests=outage_requests,
            recover_seconds=recover,
        )
