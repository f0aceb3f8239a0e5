"""Secret handling helpers: redacted URLs, fingerprints, and events that reach listeners."""

from __future__ import annotations

import httpx

from resilience import fingerprint
from resilience._context import call_context
from resilience._redact import credential_fingerprint, key_fingerprint, redact_text, redact_url


def test_redact_url_drops_userinfo_and_query_values() -> None:
    url = "https://bob:pw@api.example.com/v1/calls?api_key=k123&page=2"
    assert redact_url(url) == "https://api.example.com/v1/calls?api_key=REDACTED&page=REDACTED"
    assert redact_url("https://api.example.com/x") == "https://api.example.com/x"


def test_redact_text_without_a_request_is_unchanged() -> None:
    assert redact_text("nothing to hide", None) == "nothing to hide"


def test_basic_auth_password_is_found_even_when_it_is_not_base64() -> None:
    request = httpx.Request("GET", "https://x.test/", headers={"Authorization": "Basic %%%%"})
    assert redact_text("token %%%% echoed", request) == "token REDACTED echoed"


def test_fingerprints_are_stable_short_and_one_way() -> None:
    a = fingerprint("alice@example.com", "acme")
    assert a == fingerprint("alice@example.com", "acme")
    assert a != fingerprint("alice@example.comacme")
    assert len(a) == 16
    assert "alice" not in a


def test_key_fingerprint_is_the_fingerprint_of_the_keys_repr_remembered() -> None:
    key_fingerprint.cache_clear()
    origin = ("https", "api.example.com", 443)
    assert key_fingerprint(origin) == fingerprint(repr(origin))
    assert key_fingerprint(("https", "api.example.com", 443)) == fingerprint(repr(origin))
    assert key_fingerprint(("https", "other.example.com", 443)) != key_fingerprint(origin)
    info = key_fingerprint.cache_info()
    assert (info.hits, info.misses) == (2, 2)  # two origins, each hashed once


def test_credential_fingerprint_tells_keys_apart() -> None:
    def req(headers: dict[str, str]) -> httpx.Request:
        return httpx.Request("GET", "https://x.test/", headers=headers)

    one = credential_fingerprint(req({"Authorization": "Bearer one"}))
    two = credential_fingerprint(req({"Authorization": "Bearer two"}))
    assert one
    assert two
    assert one != two
    assert credential_fingerprint(req({})) == ""
    assert credential_fingerprint(req({"Cookie": "a=b"})) == ""


def test_events_reach_every_listener() -> None:
    request = httpx.Request("GET", "https://x.test/")
    ctx = call_context(request)
    assert call_context(request) is ctx
    seen: list[tuple[str, object]] = []
    ctx.listen(lambda name, attrs: seen.append((name, attrs["n"])))
    ctx.emit("resilience.test", {"n": 1})
    assert seen == [("resilience.test", 1)]
