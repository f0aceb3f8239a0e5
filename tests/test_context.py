"""The per-call context: origins read from httpx's parsed URL match the public URL parts, and
the retry layer's cut of an attempt moves as a gate's wait asks."""

from __future__ import annotations

import math

import anyio
import anyio.lowlevel
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience import CircuitBreaker, _context
from resilience._context import AttemptCut, url_origin
from resilience._gate import default_key

_DEFAULT_PORTS = {"http": 80, "https": 443}


def public_origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """What ``url_origin`` must return, from httpx's public properties only."""
    return (url.scheme, url.raw_host.decode("ascii"), url.port or _DEFAULT_PORTS.get(url.scheme))


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://api.test/x", ("http", "api.test", 80)),
        ("https://API.Test:443/", ("https", "api.test", 443)),
        ("https://a:8443/path?q=1", ("https", "a", 8443)),
        ("http://[::1]:8080/", ("http", "::1", 8080)),
        ("https://中国.icom.museum/", ("https", "xn--fiqs8s.icom.museum", 443)),
        ("https://user:secret@h/", ("https", "h", 443)),
    ],
)
def test_origins_of_urls(url: str, origin: tuple[str, str, int]) -> None:
    parsed = httpx.URL(url)
    assert url_origin(parsed) == origin == public_origin(parsed)


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6}){0,2}", fullmatch=True),
    port=st.one_of(st.none(), st.integers(1, 65535)),
)
def test_the_parsed_url_reads_as_the_public_properties(
    scheme: str, host: str, port: int | None
) -> None:
    url = httpx.URL(f"{scheme}://{host}" + (f":{port}" if port else "") + "/p")
    assert url_origin(url) == public_origin(url)


def test_the_breaker_and_the_gate_share_the_origin() -> None:
    request = httpx.Request("GET", "https://api.test/v1", headers={"Authorization": "Bearer t"})
    breaker_key = CircuitBreaker().key_of(request)
    assert breaker_key == ("https", "api.test", 443)
    assert default_key(request)[:3] == breaker_key


@pytest.mark.anyio
async def test_a_gates_wait_moves_an_attempt_timeout_cut_but_never_past_the_deadline() -> None:
    scope = anyio.CancelScope(deadline=100.0)
    cut = AttemptCut(scope, by_timeout=True, cap=110.0, caller_deadline=math.inf)
    cut.extend(4.0)
    assert (cut.deadline, cut.by_timeout) == (104.0, True)
    cut.extend(0.0)
    cut.extend(-1.0)
    assert cut.deadline == 104.0
    cut.extend(20.0)  # as far as the call's deadline, which now decides the cut
    assert (cut.deadline, cut.by_timeout) == (110.0, False)
    cut.extend(5.0)
    assert cut.deadline == 110.0


@pytest.mark.anyio
async def test_a_deadlines_cut_does_not_move() -> None:
    cut = AttemptCut(
        anyio.CancelScope(deadline=50.0), by_timeout=False, cap=50.0, caller_deadline=math.inf
    )
    cut.extend(10.0)
    assert cut.deadline == 50.0


@pytest.mark.anyio
async def test_a_cut_is_this_scopes_only_while_the_callers_deadline_is_still_ahead() -> None:
    """Both deadlines passed (a busy loop, or one instant): the caller's cancellation, which the
    breaker must never count, and not the attempt timeout's cut."""
    seen: list[BaseException] = []
    with anyio.CancelScope(deadline=anyio.current_time() - 1.0) as fired:
        try:
            await anyio.lowlevel.checkpoint()
        except anyio.get_cancelled_exc_class() as exc:  # what a layer below the cut sees
            seen.append(exc)
            raise
    assert fired.cancel_called
    (cancelled,) = seen
    now = anyio.current_time()

    def cut(scope: anyio.CancelScope, caller_deadline: float = math.inf) -> AttemptCut:
        return AttemptCut(scope, by_timeout=True, cap=math.inf, caller_deadline=caller_deadline)

    assert cut(fired).caught(cancelled)
    assert not cut(fired, caller_deadline=now - 0.5).caught(cancelled)
    assert not cut(anyio.CancelScope(deadline=now + 60.0)).caught(cancelled)  # not yet its time
    assert not cut(fired).caught(ValueError())


def test_one_origin_is_one_tuple_however_it_is_spelled() -> None:
    # The breaker's and the batch's dicts find an origin by identity: url_origin hands out the
    # tuple it made last for the host, for every spelling of the same origin.
    first = url_origin(httpx.URL("https://Canonical.test/a"))
    assert url_origin(httpx.URL("https://canonical.test:443/b?c=d")) is first
    assert url_origin(httpx.URL("https://user@CANONICAL.test/")) is first
    assert first == ("https", "canonical.test", 443)


def test_another_origin_on_the_same_host_is_its_own_tuple() -> None:
    plain = url_origin(httpx.URL("http://shared.test/"))
    secure = url_origin(httpx.URL("https://shared.test/"))
    other_port = url_origin(httpx.URL("https://shared.test:8443/"))
    assert (plain, secure, other_port) == (
        ("http", "shared.test", 80),
        ("https", "shared.test", 443),
        ("https", "shared.test", 8443),
    )
    # The host keeps the latest one; the others are still equal, just made anew.
    assert url_origin(httpx.URL("https://shared.test:8443/x")) is other_port
    assert url_origin(httpx.URL("http://shared.test/x")) == plain


def test_the_origin_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_context, "_ORIGINS", {})
    monkeypatch.setattr(_context, "_MAX_ORIGINS", 3)
    origins = [url_origin(httpx.URL(f"https://h{i}.test/")) for i in range(7)]
    assert len(_context._ORIGINS) <= 3
    assert origins == [("https", f"h{i}.test", 443) for i in range(7)]
    assert url_origin(httpx.URL("https://h6.test/")) is origins[6]
