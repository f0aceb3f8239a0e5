"""``resilience demo``: a plain client and the vendor stacks, side by side, on local simulators.

Each vendor's simulator is started twice on 127.0.0.1 (one per mode) with the same fault timeline;
the same workload runs against both at once, once through plain httpx with the retry loop people
write first, once through the vendor's standard stack. The simulators count what reached them.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence

import anyio

from adapters.simulators import serve

from ._report import progress_line, show_progress, table, to_json
from ._run import Mode, ModeResult, Run, make_simulator
from ._scenario import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "VENDORS", "ModeResult", "Scenario", "run_demo"]

VENDORS = ("dialstack", "get2dial", "dialnexa")


async def _drive(runs: list[Run], scenario: Scenario, duration: float, progress: bool) -> None:
    for run in runs:
        await run.setup()
    for run in runs:
        run.started = run.simulator.now()
        for spec in scenario.fault_specs(duration, offset=run.started):
            run.simulator.faults.add(spec)
    async with anyio.create_task_group() as tasks:
        for run in runs:
            tasks.start_soon(run.drive, scenario, run.started + duration)
        if progress:
            tasks.start_soon(_report_progress, runs, runs[0].started, duration)


async def _report_progress(runs: list[Run], start: float, duration: float) -> None:
    clock = runs[0].simulator
    while (elapsed := clock.now() - start) < duration:
        show_progress(progress_line(runs, elapsed, duration))
        await anyio.sleep(0.5)
    show_progress(progress_line(runs, duration, duration) + "\n")


def run_demo(
    *,
    vendors: Sequence[str] = VENDORS,
    scenario: str = "standard",
    duration: float = 30.0,
    modes: Sequence[Mode] = ("naive", "stack"),
    progress: bool = True,
) -> list[ModeResult]:
    """Run the demo and return one result per vendor and mode."""
    chosen = SCENARIOS[scenario]
    with contextlib.ExitStack() as servers:
        runs = []
        for vendor in vendors:
            for mode in modes:
                simulator = make_simulator(vendor)
                server = servers.enter_context(serve(simulator))
                runs.append(Run(vendor=vendor, mode=mode, simulator=simulator, url=server.url))
        anyio.run(_drive, runs, chosen, duration, progress)
    outage = chosen.outage
    return [
        run.result(
            None
            if outage is None
            else (run.started + outage.start * duration, run.started + outage.end * duration)
        )
        for run in runs
    ]


def print_report(results: Sequence[ModeResult], *, as_json: bool, **meta: object) -> None:
    """Print the final table (or JSON)."""
    if as_json:
        json.dump(to_json(results, **meta), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    scenario = SCENARIOS.get(str(meta.get("scenario", "standard")))
    print(table(results, outage=scenario is None or scenario.outage is not None))
