"""The demo's output: a live progress line while it runs, and the final side-by-side table."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

import attrs

from ._run import MODE_TITLES, ModeResult, Run

__all__ = ["ROWS", "progress_line", "table", "to_json"]

#: (label, field, better) -- ``better`` says which way a reader should want the number to go.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("requests sent", "requests_sent", "lower"),
    ("operations attempted", "operations", ""),
    ("operations succeeded", "succeeded", "higher"),
    ("refused locally: circuit open", "refused_circuit_open", ""),
    ("refused locally: Retry-After gate", "refused_rate_limited", ""),
    ("refused locally: lockout guard", "refused_locked_out", ""),
    ("duplicated phone calls created", "duplicated_calls", "lower"),
    ("failed logins at the vendor", "failed_logins", "lower"),
    ("account lockouts", "lockouts", "lower"),
    ("a person's logins refused (locked out)", "people_locked_out", "lower"),
    ("429s received", "rate_limited", "lower"),
    ("requests sent during the outage", "outage_requests", "lower"),
    ("time to recover after the outage (s)", "recover_seconds", "lower"),
)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


#: Rows about the login loop (Get2Dial's), and about the outage: shown only where they apply.
_LOGIN_ROWS = frozenset({"people_locked_out", "failed_logins", "lockouts", "refused_locked_out"})
_OUTAGE_ROWS = frozenset({"outage_requests", "recover_seconds"})


def table(results: Sequence[ModeResult], *, outage: bool = True) -> str:
    """One Markdown table per vendor: metric rows, one column per mode.

    Args:
        results: One result per vendor and mode.
        outage: Whether the scenario had an outage (its rows are left out otherwise).
    """
    out = []
    for vendor in dict.fromkeys(r.vendor for r in results):
        by_mode = {r.mode: r for r in results if r.vendor == vendor}
        modes = [m for m in ("naive", "stack") if m in by_mode]
        out.append(f"### {vendor}\n")
        out.append("| | " + " | ".join(MODE_TITLES[m] for m in modes) + " |")
        out.append("|---|" + "---:|" * len(modes))
        for label, field, _ in ROWS:
            values = [getattr(by_mode[m], field) for m in modes]
            if field in _LOGIN_ROWS and vendor != "get2dial":
                continue
            if field in _OUTAGE_ROWS and not outage:
                continue
            out.append(f"| {label} | " + " | ".join(_cell(v) for v in values) + " |")
        out.append("")
    return "\n".join(out)


def to_json(results: Sequence[ModeResult], **meta: object) -> dict[str, object]:
    """Everything the table shows, for machines."""
    return {**meta, "results": [attrs.asdict(r) for r in results]}


def progress_line(runs: Sequence[Run], elapsed: float, duration: float) -> str:
    """One line: time, then per vendor the requests each mode has sent and what succeeded."""
    parts = [f"{elapsed:5.1f}/{duration:.0f}s"]
    for vendor in dict.fromkeys(r.vendor for r in runs):
        cells = [
            f"{run.mode} {len(run.simulator.requests)} sent/{run.succeeded} ok"
            for run in runs
            if run.vendor == vendor
        ]
        parts.append(f"{vendor}: " + ", ".join(cells))
    return " | ".join(parts)


def show_progress(line: str, stream: TextIO = sys.stderr) -> None:
    """Rewrite the progress line in place on a terminal; print it plainly elsewhere."""
    if stream.isatty():
        stream.write("\r\x1b[2K" + line)
    else:
        stream.write(line + "\n")
    stream.flush()
