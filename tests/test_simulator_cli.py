"""``python -m adapters.simulators``: in-process and as a real subprocess."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading

import httpx
import pytest

from adapters.cli import main as cli_main
from adapters.simulators.__main__ import main


class Output(io.StringIO):
    """Captured output that signals its first line."""

    def __init__(self) -> None:
        super().__init__()
        self.first_line = threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if "\n" in self.getvalue():
            self.first_line.set()
        return written

    def url(self) -> str:
        assert self.first_line.wait(10), "no URL printed"
        return self.getvalue().partition("\n")[0].rsplit(" ", 1)[1]


def test_main_serves_until_stopped() -> None:
    stop = threading.Event()
    out = Output()
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(
            main(
                ["dialnexa", "--port", "0", "--fault", "status=503,count=1,retry_after=2"],
                stop=stop,
                out=out,
            )
        )
    )
    thread.start()
    try:
        url = out.url()
        assert url.startswith("http://127.0.0.1:")
        first = httpx.get(f"{url}/v1/call-logs", timeout=5)
        assert (first.status_code, first.headers["retry-after"]) == (503, "2")
        second = httpx.get(f"{url}/v1/call-logs", timeout=5)
        assert second.status_code == 401
    finally:
        stop.set()
        thread.join(10)
    assert codes == [0]
    printed = out.getvalue()
    assert "Authorization: Bearer dk_demo:sk_demo_secret" in printed
    assert "fault: status,count=1,status=503,retry_after=2.0" in printed
    assert printed.endswith("2 requests served.\n")


def test_a_bad_fault_spec_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["dialstack", "--fault", "bogus"])
    assert exit_info.value.code == 2
    assert "unknown fault kind" in capsys.readouterr().err


def test_an_unknown_vendor_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["acme"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["-1", "65536", "99999", "http"])
def test_a_port_out_of_range_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], port: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["dialstack", "--port", port])
    assert exit_info.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_a_port_in_use_is_a_usage_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            main(["dialstack", "--port", str(port)], stop=threading.Event())
    assert exit_info.value.code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_the_resilience_command_names_itself_in_simulates_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli_main(["simulate", "--help"])
    assert capsys.readouterr().out.startswith("usage: resilience simulate")


def test_python_dash_m_starts_a_simulator_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.simulators", "get2dial", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("get2dial simulator on http://127.0.0.1:"), first
        url = first.split()[-1]
        response = httpx.get(f"{url}/api/v1/auth/me", timeout=5)
        assert response.json() == {
            "status": "error",
            "message": "missing or invalid authorization header",
        }
        process.terminate()
        out, err = process.communicate(timeout=15)
        assert process.returncode == 0, err
        assert "1 requests served." in out
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
