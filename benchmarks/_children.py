"""Fresh processes for the benchmarks whose figures move with one process's memory layout.

What one process measures moves by a few percent with where its objects happen to lie (see
compare.py's docstring), so the scripts that compare figures closer than that run each
measurement in many fresh interpreters, one after another (never side by side: they would
share the two cores), and read the spread across them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def each_process(command: list[str], processes: int, *, progress: bool = False) -> Iterator[Any]:
    """Run ``command --seed i`` for ``i`` in ``range(processes)``, each in a fresh process of
    this interpreter; yield the JSON each one prints on stdout. A child that fails raises
    :class:`subprocess.CalledProcessError` with its stderr."""
    for index in range(processes):
        child = subprocess.run(  # noqa: S603 - a benchmark script, run by this interpreter
            [sys.executable, *command, "--seed", str(index)],
            check=True,
            capture_output=True,
            text=True,
        )
        yield json.loads(child.stdout)
        if progress:
            print(f"process {index + 1}/{processes}", file=sys.stderr, flush=True)


def per_process(
    command: list[str], processes: int, *, progress: bool = False
) -> dict[str, list[float]]:
    """For children that print one flat ``{name: figure}`` object: each name's figures, one per
    process, in process order."""
    samples: dict[str, list[float]] = {}
    for found in each_process(command, processes, progress=progress):
        for name, value in found.items():
            samples.setdefault(name, []).append(value)
    return samples


def write_results(name: str, report: dict[str, Any], table: str) -> None:
    """``benchmarks/results/<name>.json`` (the report) and ``<name>.md`` (the table)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(table + "\n")


def command_line(
    doc: str,
    processes: int,
    child: Callable[[int], Coroutine[Any, Any, None]],
    main: Callable[[int], None],
) -> None:
    """The command line of a script run as ``--processes N`` (its ``main``), whose fresh
    processes run ``--child --seed I`` (its ``child``, on asyncio)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(
        "--processes", type=int, default=processes, help=f"fresh processes (default {processes})"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        asyncio.run(child(arguments.seed))
    else:
        main(arguments.processes)
