"""``resilience demo``: a short real run on the embedded simulators, and the command line.

The demo runs in real time against real loopback servers, so only properties that hold whatever
the timing are asserted: the standard stacks never duplicate a call and never lock an account.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from adapters.cli import main
from adapters.demo import SCENARIOS, run_demo
from adapters.demo._report import table, to_json
from adapters.demo._run import Run, make_simulator
from adapters.simulators import RecordedRequest


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


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        # A duration outside 1 s to an hour: NaN once ran forever with nothing sent, and inf
        # and 0.001 ended in a traceback.
        *(("--duration", v, "--duration") for v in ["0", "-3", "0.001", "nan", "inf", "1e9", "x"]),
        *(("--trace", v, "console or otlp") for v in ["zipkin", "console=x", ""]),
    ],
)
def test_a_bad_option_value_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], option: str, value: str, said: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", option, value])
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err


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


def _record(time: float, *, status: int = 200, fault: str | None = None, person: bool = False):  # type: ignore[no-untyped-def]
    headers = {"x-demo-person": "yes"} if person else {}
    return RecordedRequest(
        method="POST", path="/api/v1/auth/login", query={}, headers=headers, body=None,
        status=status, time=time, operation=None, fault=fault,
    )  # fmt: skip


def test_the_tally_counts_the_client_under_test_alone() -> None:
    """A person's own logins and the set-up login are the simulator's, not the client's."""
    run = Run(vendor="get2dial", mode="stack", simulator=make_simulator("get2dial"), url="")
    run.started = 10.0
    run.simulator.requests.extend(
        [
            _record(9.0),  # the service account's login, before the workload
            _record(12.0, status=502, fault="outage"),
            _record(12.5, status=502, fault="outage", person=True),
            _record(13.0, status=429, fault="rate_limit"),
            _record(13.5, status=429, fault="rate_limit", person=True),
            _record(14.0, person=True),
        ]
    )
    result = run.result((11.0, 13.0))
    assert (result.requests_sent, result.outage_requests, result.rate_limited) == (2, 1, 1)


def test_no_time_to_recover_for_a_client_that_never_met_the_outage() -> None:
    run = Run(vendor="dialnexa", mode="stack", simulator=make_simulator("dialnexa"), url="")
    run.start_times = [1.0, 9.5]  # nothing started between 4 and 8
    run.success_times = [1.2, 9.6]
    assert run.result((4.0, 8.0)).recover_seconds is None
    run.start_times.append(5.0)  # one operation met it (refused locally, say)
    assert run.result((4.0, 8.0)).recover_seconds == pytest.approx(1.6)


def test_get2dial_shows_its_duplicated_calls_too(results: list) -> None:  # type: ignore[type-arg]
    text = table([r for r in results if r.vendor == "get2dial"])
    assert "| duplicated phone calls created |" in text
    no_outage = table(results, outage=False)
    assert "during the outage" not in no_outage
    assert "time to recover" not in no_outage


def test_ctrl_c_ends_the_demo_with_130_and_no_traceback() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters", "demo", "--duration", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        process.stderr.readline()  # the first progress line: the demo is running
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "interrupted" in err
    assert "Traceback" not in err
