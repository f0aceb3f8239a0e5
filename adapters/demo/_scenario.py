"""The demo's scenarios: which faults each simulator meets, and when.

Times are fractions of the run's duration, so a shorter or longer ``--duration`` keeps the shape:
a quiet start, a rate-limit window, a burst of 5xx, an outage, and the recovery after it.
"""

from __future__ import annotations

import attrs

__all__ = ["SCENARIOS", "Scenario", "Window"]


@attrs.frozen
class Window:
    """A fault, active from ``start`` to ``end`` (fractions of the run)."""

    name: str
    start: float
    end: float
    #: ``parse_fault`` text without ``start``/``end``; ``{vendor_calls}`` is the vendor's
    #: call-creating path.
    fault: str


RATE_LIMIT = Window(
    "rate-limit window (429, Retry-After: 2)", 0.05, 0.15, "rate_limit,retry_after=2"
)
# The burst's POSTs run the vendor logic and then fail: the call exists, the client sees a 500.
BURST_POST = Window("5xx burst", 0.22, 0.30, "status=500,method=POST,executed=true")
BURST_GET = Window("5xx burst", 0.22, 0.30, "status=503,method=GET")
OUTAGE = Window("outage (502 from the proxy)", 0.38, 0.55, "outage=502")


@attrs.frozen
class Scenario:
    """A named set of fault windows, and whether a misconfigured login loop runs."""

    name: str
    description: str
    windows: tuple[Window, ...]
    wrong_password: bool = attrs.field(default=True, kw_only=True)

    @property
    def outage(self) -> Window | None:
        """The outage window, if the scenario has one (for the time to recover)."""
        return next((w for w in self.windows if w.fault.startswith("outage")), None)

    def fault_specs(self, duration: float, *, offset: float = 0.0) -> list[str]:
        """The simulator fault specs for a run of ``duration`` seconds starting at ``offset``."""
        return [
            f"{w.fault},start={offset + w.start * duration:.3f},end={offset + w.end * duration:.3f}"
            for w in self.windows
        ]


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "standard",
            "rate-limit window, 5xx burst, outage and recovery, wrong-password login loop",
            (RATE_LIMIT, BURST_POST, BURST_GET, OUTAGE),
        ),
        Scenario(
            "rate-limit",
            "a rate-limit window with Retry-After only",
            (RATE_LIMIT,),
            wrong_password=False,
        ),
        Scenario(
            "burst",
            "a burst of 5xx that hide created calls",
            (BURST_POST, BURST_GET),
            wrong_password=False,
        ),
        Scenario("outage", "an outage and its recovery", (OUTAGE,), wrong_password=False),
        Scenario("lockout", "a wrong-password login loop only (Get2Dial)", (), wrong_password=True),
    )
}
