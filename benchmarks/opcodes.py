"""Bytecodes executed per request on the success path, counted by the interpreter's own tracing.

    python benchmarks/opcodes.py [--calls N]

instructions.py's variants and workload (sequential ``client.get`` calls over
``httpx.MockTransport``, after a warm-up), each in a fresh process, with ``sys.settrace``
asking for an ``opcode`` event for every bytecode that Python code executes. The count is exact,
and the same from run to run but for work that follows the clock (a breaker's success slot
rolls over every 3 s; a run whose counted calls span a rollover counts its flush). What C code
does inside a bytecode (a dict lookup, a call into the standard library's C parts) is not in
it; that is what instructions.py counts.

Why both: for the thin layers (the stack, httpx-retries, a forwarding transport) neither count
alone predicts the time they add on this release's VM: the stack is ahead of httpx-retries by
instructions, behind it by bytecodes, and level by time. bytecode_cost.py times padding of
known bytecodes to tell what a bytecode costs inside a request.

Prints a Markdown table and writes ``benchmarks/results/opcodes.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.compare import Maker
from benchmarks.instructions import ALL, URL, WARM_UP

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "opcodes.json"


def _where(filename: str) -> str:
    """A code object's file as a short name: in this project, a package or the standard library."""
    for root in (
        "site-packages/",  # first: a virtual environment may lie inside the project
        f"{ROOT}/",
        f"python{sys.version_info[0]}.{sys.version_info[1]}/",
    ):
        if root in filename:
            return filename.split(root, 1)[1]
    return filename


async def count(name: str, calls: int) -> Counter[str]:
    """Bytecodes executed in ``calls`` requests after the warm-up, by file."""
    return await count_made(ALL[name], calls)


async def count_made(make: Maker, calls: int) -> Counter[str]:
    """:func:`count` for the variant ``make`` sets up."""
    counts: Counter[str] = Counter()

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "opcode":
            counts[frame.f_code.co_filename] += 1
        return local

    def start(frame: FrameType, event: str, arg: object) -> Any:
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return local

    inner = httpx.MockTransport(lambda r: httpx.Response(200, content=b"ok"))
    client, call = make(inner, URL)
    for _ in range(WARM_UP):
        await call()
    sys.settrace(start)
    try:
        for _ in range(calls):
            await call()
    finally:
        sys.settrace(None)
    await client.aclose()
    return Counter({_where(file): n for file, n in counts.items()})


def main(calls: int) -> None:
    found: dict[str, dict[str, float]] = {}
    for name in ALL:
        child = subprocess.run(  # noqa: S603 - this script, run by its own interpreter
            [sys.executable, __file__, "--child", name, "--calls", str(calls)],
            check=True,
            capture_output=True,
            text=True,
        )
        found[name] = json.loads(child.stdout)
    totals = {name: sum(by_file.values()) for name, by_file in found.items()}
    base = totals["bare httpx"]
    lines = [
        f"| success path: MockTransport, sequential ({calls} calls) | bytecodes/request "
        "| added over bare httpx | ratio to bare httpx |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {name} | {total:,.0f} | {total - base:+,.0f} | {total / base:.3f}x |"
        for name, total in totals.items()
    ]
    table = "\n".join(lines)
    print(table)
    report = {
        "python": platform.python_version(),
        "httpx": httpx.__version__,
        "calls": calls,
        "bytecodes_per_request": totals,
        "added_over_bare": {name: total - base for name, total in totals.items()},
        "by_file": found,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


async def _child(name: str, calls: int) -> None:
    counts = await count(name, calls)
    print(json.dumps({file: n / calls for file, n in counts.most_common()}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="requests counted per variant")
    parser.add_argument("--child", metavar="VARIANT", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        asyncio.run(_child(arguments.child, arguments.calls))
    else:
        main(arguments.calls)
