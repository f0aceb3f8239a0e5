"""``resilience demo``: a short real run on the embedded simulators, and the command line.

The demo runs in real time against real loopback servers, so only properties that hold whatever
the timing are asserted: the standard stacks never duplicate a call and never lock an account.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from adapters.cli import main
from adapters.demo import SCENARIOS, run_demo
from adapters.demo._report import table, to_json


@pytest.fixture(scope="module")
def results() -> list:  # type: ignore[type-arg]
    return run_demo(duration=3.0, progress=False)


def test_every_vendor_runs_in_both_modes(results: list) -> None:  # type: ignore[type-arg]
    assert {(r.vendor, r.mode) for r in results} == {
        (v, m) for v in ("dialstack", "get2dial", "dialnexa") for m in ("naive", "stack")
    }
    for result in results:
        assert result.requests_sent > 0
        assert result.operations > 0


def test_the_stacks_never_duplicate_a_call_nor_lock_an_account(results: list) -> None:  # type: ignore[type-arg]
    for result in (r for r in results if r.mode == "stack"):
        assert result.duplicated_calls == 0, result
        assert result.lockouts == 0, result
        assert result.people_locked_out == 0, result
        # The guard allows half of Get2Dial's 10 failed logins per identity and window.
        assert result.failed_logins <= 5, result


def test_the_table_shows_every_vendor_side_by_side(results: list) -> None:  # type: ignore[type-arg]
    text = table(results)
    for vendor in ("dialstack", "get2dial", "dialnexa"):
        assert f"### {vendor}" in text
    assert "| duplicated phone calls created |" in text
    assert "| account lockouts |" in text
    payload = to_json(results, scenario="standard", duration=3.0)
    assert json.loads(json.dumps(payload))["results"][0]["vendor"] == "dialstack"


def test_scenario_windows_are_offset_and_scaled() -> None:
    specs = SCENARIOS["standard"].fault_specs(10.0, offset=2.0)
    assert "rate_limit,retry_after=2,start=2.500,end=3.500" in specs
    assert SCENARIOS["standard"].outage is not None
    assert SCENARIOS["rate-limit"].outage is None
    assert SCENARIOS["lockout"].fault_specs(10.0) == []


@pytest.mark.parametrize("value", ["0", "-3", "0.001", "nan", "inf", "1e9", "soon"])
def test_a_duration_outside_one_second_to_an_hour_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """NaN once ran forever with nothing sent; inf and 0.001 ended in a traceback."""
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--duration", value])
    assert exit_info.value.code == 2
    assert "--duration" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["zipkin", "console=x", ""])
def test_an_unknown_trace_exporter_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--trace", value])
    assert exit_info.value.code == 2
    assert "console or otlp" in capsys.readouterr().err


def test_a_command_is_required() -> None:
    with pytest.raises(SystemExit):
        main([])


def test_command_line_json_and_console_trace() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adapters", "demo", "--vendor", "dialnexa", "--scenario",
         "rate-limit", "--duration", "1.5", "--json", "--trace", "console"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["scenario"] == "rate-limit"
    assert {r["mode"] for r in payload["results"]} == {"naive", "stack"}
    assert '"trace_id"' in result.stderr  # spans exported to the console (stderr)


def test_unknown_trace_exporter_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adapters", "demo", "--duration", "1", "--trace", "zipkin"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "console or otlp" in result.stderr
