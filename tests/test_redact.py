"""Secret handling helpers: redacted URLs, fingerprints, and events that reach listeners."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from resilience import fingerprint
from resilience._context import call_context
from resilience._redact import (
    credential_fingerprint,
    is_sensitive_header,
    key_fingerprint,
    redact_text,
    redact_url,
    request_secrets,
)


def test_redact_url_drops_userinfo_and_query_values() -> None:
    url = "https://bob:pw@api.example.com/v1/calls?api_key=k123&page=2"
    assert redact_url(url) == "https://api.example.com/v1/calls?api_key=REDACTED&page=REDACTED"
    assert redact_url("https://api.example.com/x") == "https://api.example.com/x"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.example.com/x#access_token=FRAG", "https://api.example.com/x"),
        ("https://api.example.com/x?sk_live_123", "https://api.example.com/x?REDACTED"),
        ("https://api.example.com/x?a=1&flag&b=two", "https://api.example.com/x?a=REDACTED&REDACTED&b=REDACTED"),
        ("https://u:p@api.example.com/x?k=v#f", "https://api.example.com/x?k=REDACTED"),
    ],
)  # fmt: skip
def test_redact_url_drops_fragments_and_bare_query_keys(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_header_named_like_a_credential_is_one() -> None:
    for name in ("X-Auth-Token", "X-Session-Id", "My-Secret", "X-Vendor-Api-Key", "Signature"):
        assert is_sensitive_header(name)
    for name in ("Content-Type", "Idempotency-Key", "X-Request-Id", "Accept"):
        assert not is_sensitive_header(name)


def test_a_huge_or_streamed_body_is_not_parsed_for_secrets() -> None:
    huge = httpx.Request("POST", "https://x.test/", json={"password": "p" * 70_000})
    assert "p" * 70_000 not in request_secrets(huge).exact

    async def stream() -> AsyncIterator[bytes]:
        yield b'{"password": "streamed"}'

    streamed = httpx.Request("POST", "https://x.test/", content=stream())
    assert not request_secrets(streamed)


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


def test_key_fingerprint_is_a_keyed_hash_of_the_keys_repr_remembered() -> None:
    key_fingerprint.cache_clear()
    origin = ("https", "api.example.com", 443)
    first = key_fingerprint(origin)
    assert key_fingerprint(("https", "api.example.com", 443)) == first
    assert key_fingerprint(("https", "other.example.com", 443)) != first
    info = key_fingerprint.cache_info()
    assert (info.hits, info.misses) == (1, 2)  # two origins, each hashed once
    assert len(first) == 16


def test_key_fingerprints_cannot_be_matched_against_a_list_of_candidates() -> None:
    """Telemetry's hashed keys are keyed per process: a plain digest of a guessed email (or
    of the identity an adapter derives from it) finds nothing in them."""
    identity = fingerprint("get2dial", "alice@example.com")
    shown = key_fingerprint(identity)
    guesses = {fingerprint(repr(identity)), identity, fingerprint("alice@example.com")}
    assert shown not in guesses
    script = "from resilience._redact import key_fingerprint; print(key_fingerprint('alice'))"
    other = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert other.stdout.strip() != key_fingerprint("alice")  # another process, another key


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


def test_a_bare_query_key_is_a_secret_as_sent() -> None:
    secrets = request_secrets(httpx.Request("GET", "https://x.test/a?sk_live_1234&page=2"))
    assert "sk_live_1234" in secrets.exact
    assert (
        redact_text(
            "unknown key sk_live_1234", httpx.Request("GET", "https://x.test/a?sk_live_1234")
        )
        == "unknown key REDACTED"
    )


def test_the_bodys_plain_values_are_redacted_as_whole_words_only() -> None:
    """Credential- and person-like fields go wherever they appear; the body's other values as
    whole words, so the vendor's own words survive ("caller_id", not "REDACTEDer_id")."""
    body = {
        "type": "call",
        "region": "us-east",
        "api_key": "k9",
        "auth": {"pin": "4321"},
        "cvv": "123",
        "shipping": "standard",  # not a "pin": fields are matched by the words of their names
    }
    request = httpx.Request("POST", "https://x.test/v1/calls", json=body)
    message = "must be one of: us-east, eu-west; a call needs a caller_id; pin 4321x; cvv 123"
    assert redact_text(message + "; nonstandard", request) == (
        "must be one of: REDACTED, eu-west; a REDACTED needs a caller_id; pin REDACTEDx; "
        "cvv REDACTED; nonstandard"
    )


@pytest.mark.parametrize(
    ("body", "echoed", "shown"),
    [
        # The longest first: a value holding a credential goes whole, not around it.
        ({"email": "jane@ex.com", "message": "Contact jane@ex.com about invoice 4411"},
         "got: Contact jane@ex.com about invoice 4411", "got: REDACTED"),
        # Punctuation at a value's edge: no word boundary is asked for there.
        ({"ref": "acct#99887766!"}, "bad ref acct#99887766!x", "bad ref REDACTEDx"),
        # Short credentials and a person's name, by the words of their fields' names.
        ({"pwd": "ab12c", "zip": "90210", "firstName": "Rosalind"},
         "ab12c / 90210 / Rosalind", "REDACTED / REDACTED / REDACTED"),
    ],
)  # fmt: skip
def test_what_a_vendor_echoes_of_a_body_is_gone(
    body: dict[str, str], echoed: str, shown: str
) -> None:
    request = httpx.Request("POST", "https://x.test/v1/x", json=body)
    assert redact_text(echoed, request) == shown


@pytest.mark.parametrize(
    ("field", "secret"),
    [
        ("newpassword", True), ("accesstoken", True), ("sessionid", True), ("userid", True),
        ("creditcard", True), ("firstname", True), ("first_name", True), ("APIKey", True),
        ("template_name", False), ("account_type", False), ("shipping", False),
        ("author", False), ("monkey", False),
    ],
)  # fmt: skip
def test_a_field_is_a_secret_by_the_words_and_parts_of_its_name(field: str, secret: bool) -> None:
    request = httpx.Request("POST", "https://x.test/", json={field: "order"})
    assert ("order" in request_secrets(request).exact) is secret


def test_values_of_one_or_two_characters_are_never_redacted() -> None:
    request = httpx.Request("POST", "https://x.test/", json={"user_id": "7", "region": "us"})
    assert redact_text("7 of 30 retries left; retry in 7 s (us)", request) == (
        "7 of 30 retries left; retry in 7 s (us)"
    )


def test_many_short_values_cost_one_pass() -> None:
    """256 three-letter values, every one echoed in a 64 KiB message: found in one pass over
    its words (this took a third of a second, one regular expression per value)."""
    values = [f"v{n:02d}" for n in range(256)]
    request = httpx.Request("POST", "https://x.test/", json={"items": values})
    message = " ".join(values * 64)[: 64 * 1024]
    redacted = redact_text(message, request)
    assert not any(word in values for word in redacted.split())
