"""The Classify layer over real loopback sockets: bad input is classified, nothing is lost."""

from __future__ import annotations

import contextlib
import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from typing import ClassVar

import httpx
import pytest

import resilience
from adapters.simulators import RunningServer
from resilience import Classify, Kind, Stack, outcome

from .apps import CHUNK, CHUNKS, GZIP_BOMB_BODY, HUGE_BODY, HUGE_SIZE, PROXY_HTML

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(core_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    transport = Stack(Classify()).transport(httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(base_url=core_server.url, transport=transport) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "status", "kind"),
    [
        ("/proxy-502", 502, Kind.SERVER_ERROR),
        ("/invalid-json", 500, Kind.SERVER_ERROR),
        ("/json-array", 400, Kind.BAD_REQUEST),
        ("/json-string", 400, Kind.BAD_REQUEST),
        ("/not-utf8", 400, Kind.BAD_REQUEST),
        ("/status-599", 599, Kind.SERVER_ERROR),
        ("/gzip", 422, Kind.VALIDATION),
        ("/status/418", 418, Kind.CLIENT_ERROR),
        ("/status/304", 304, Kind.NOT_MODIFIED),
    ],
)
async def test_bad_input_is_classified_from_the_status_line(
    client: httpx.AsyncClient, path: str, status: int, kind: Kind
) -> None:
    response = await client.get(path)
    assert response.status_code == status
    result = outcome(response)
    assert result.classification.kind is kind
    assert result.attempts == 1
    assert result.waited == 0.0


async def test_proxy_html_is_still_readable(client: httpx.AsyncClient) -> None:
    response = await client.get("/proxy-502")
    assert response.content == PROXY_HTML


async def test_gzip_error_body_is_decoded_for_the_user(client: httpx.AsyncClient) -> None:
    response = await client.get("/gzip")
    assert response.json() == {"error": "bad field", "code": "validation_error"}


async def test_a_gzip_bomb_is_classified_and_still_reads_whole(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/gzip-bomb")
    assert outcome(response).classification.kind is Kind.VALIDATION
    assert response.content == GZIP_BOMB_BODY


async def test_ten_megabyte_error_body_is_all_readable(client: httpx.AsyncClient) -> None:
    response = await client.get("/huge")
    assert outcome(response).classification.kind is Kind.SERVER_ERROR
    assert len(response.content) == HUGE_SIZE
    assert response.content == HUGE_BODY


async def test_ten_megabyte_error_body_streams(core_server: RunningServer) -> None:
    transport = Stack(Classify()).transport(httpx.AsyncHTTPTransport())
    async with (
        httpx.AsyncClient(base_url=core_server.url, transport=transport) as client,
        client.stream("GET", "/huge") as response,
    ):
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
    assert size == HUGE_SIZE


async def test_error_body_closed_unread_leaks_nothing(client: httpx.AsyncClient) -> None:
    # 10 MB error body: the stack holds a half-read stream; closing it must close that too
    # (on trio an unclosed async generator is reported when collected; warnings are errors).
    async with client.stream("GET", "/huge") as response:
        assert outcome(response).classification.kind is Kind.SERVER_ERROR
    assert response.is_closed


async def test_chunked_error_without_content_length(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/chunked-error") as response:
        assert "content-length" not in response.headers
        assert outcome(response).classification.kind is Kind.SERVER_ERROR
        body = await response.aread()
    assert body == CHUNK * CHUNKS


async def test_success_bodies_are_never_read(core_server: RunningServer) -> None:
    inner = httpx.AsyncHTTPTransport()
    transport = Stack(Classify()).transport(inner)
    async with (
        httpx.AsyncClient(base_url=core_server.url, transport=transport) as client,
        client.stream("GET", "/chunked-ok") as response,
    ):
        # Nothing was buffered by the stack: the stream is still the network's own.
        assert not isinstance(response.stream, resilience._body.ReplayStream)
        assert outcome(response).classification.kind is Kind.SUCCESS
        async with contextlib.aclosing(response.aiter_raw()) as chunks:
            first = await chunks.__anext__()
        assert first


async def test_peek_limit_bounds_what_the_stack_reads(core_server: RunningServer) -> None:
    seen: list[int] = []

    class Spy(resilience.HTTPClassifier):
        def classify_response(self, request, response, body):  # type: ignore[no-untyped-def]
            seen.append(len(body))
            return super().classify_response(request, response, body)

    transport = Stack(Classify(Spy(), peek_limit=1000)).transport(httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(base_url=core_server.url, transport=transport) as client:
        response = await client.get("/huge")
        assert len(response.content) == HUGE_SIZE
    assert seen == [1000]


async def test_a_broken_classifier_falls_back_to_the_status(core_server: RunningServer) -> None:
    class Broken(resilience.HTTPClassifier):
        def parse_error(self, response, body):  # type: ignore[no-untyped-def]
            raise KeyError("adapter bug")

    transport = Stack(Classify(Broken())).transport(httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(base_url=core_server.url, transport=transport) as client:
        response = await client.get("/status/503")
    verdict = outcome(response).classification
    assert verdict.kind is Kind.SERVER_ERROR
    assert "classifier failed: KeyError" in verdict.reason


async def test_connect_error_is_classified_not_sent_and_reraised_as_itself() -> None:
    seen: list[resilience.Classification] = []

    class Spy(resilience.HTTPClassifier):
        def classify_exception(self, request, exc):  # type: ignore[no-untyped-def]
            verdict = super().classify_exception(request, exc)
            seen.append(verdict)
            return verdict

    transport = Stack(Classify(Spy())).transport(httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:9/")  # discard port: nothing listens
    assert [(v.kind, v.may_have_executed) for v in seen] == [(Kind.NETWORK, False)]


def test_gzip_prefix_decoding_is_best_effort() -> None:
    headers = httpx.Headers({"content-encoding": "gzip"})
    whole = gzip.compress(b'{"a": 1}')
    assert resilience._body.decoded_prefix(headers, whole) == b'{"a": 1}'
    assert resilience._body.decoded_prefix(headers, b"not gzip at all") == b""
    assert resilience._body.decoded_prefix(httpx.Headers(), b"plain", limit=3) == b"pla"


def _peak_bytes(function: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("nested", [False, True], ids=["gzip", "gzip-in-gzip"])
def test_a_compression_bomb_is_inflated_only_as_far_as_the_bound(nested: bool) -> None:
    """64 KiB of raw bytes that inflate to 64 MiB (or, nested, far more) cost about the bound."""
    inflated = b"{" + b" " * (64 * 1024 * 1024)
    raw = gzip.compress(inflated, compresslevel=9)
    encoding = "gzip"
    if nested:
        raw, encoding = gzip.compress(raw, compresslevel=9), "gzip, gzip"
    raw = raw[: resilience._body.DEFAULT_PEEK_LIMIT]  # what peek() hands on, at most
    headers = httpx.Headers({"content-encoding": encoding})
    prefix = resilience._body.decoded_prefix(headers, raw)
    assert prefix == inflated[: resilience._body.DEFAULT_PEEK_LIMIT]
    # The output and zlib's window, not the 64 MiB (tracemalloc counts Python's allocations).
    assert _peak_bytes(lambda: resilience._body.decoded_prefix(headers, raw)) < 1024 * 1024


@pytest.mark.parametrize(
    ("encoding", "raw"),
    [
        ("deflate", zlib.compress(b'{"a": 1}')),  # RFC 9110's deflate: a zlib stream
        ("deflate", zlib.compress(b'{"a": 1}')[2:-4]),  # raw deflate, as some servers send
        ("identity", b'{"a": 1}'),
        ("x-unknown", b'{"a": 1}'),  # skipped, as httpx skips it
        # mtime=0: the same bytes, so the same test ids, in every process (pytest-xdist's
        # workers must collect alike)
        ("gzip, identity", gzip.compress(b'{"a": 1}', mtime=0)),
        ("GZIP", gzip.compress(b'{"a": 1}', mtime=0)),
    ],
)
def test_each_content_coding_is_undone(encoding: str, raw: bytes) -> None:
    headers = httpx.Headers({"content-encoding": encoding})
    assert resilience._body.decoded_prefix(headers, raw) == b'{"a": 1}'


class _BodyLength(resilience.HTTPClassifier):
    """Remembers how many decoded bytes each error reached the classifier with."""

    seen: ClassVar[list[int]] = []

    def parse_error(self, response: httpx.Response, body: bytes) -> resilience.VendorError | None:
        self.seen.append(len(body))
        return super().parse_error(response, body)


async def test_the_decoded_body_keeps_to_the_layers_own_peek_limit(
    core_server: RunningServer,
) -> None:
    transport = Stack(Classify(_BodyLength(), peek_limit=1024)).transport(
        httpx.AsyncHTTPTransport()
    )
    async with httpx.AsyncClient(base_url=core_server.url, transport=transport) as client:
        response = await client.get("/gzip-bomb")
    assert _BodyLength.seen[-1] == 1024  # not 64 KiB: the bound is the layer's setting
    assert response.content == GZIP_BOMB_BODY


class _Inflating:
    """A decoder that cannot bound its output (as httpx's brotli and zstd decoders cannot)."""

    def __init__(self) -> None:
        self.fed = 0

    def decode(self, data: bytes) -> bytes:
        if data == b"bad":
            raise httpx.DecodingError("corrupt")
        self.fed += len(data)
        return data * 1000


def test_a_decoder_without_a_bound_is_fed_in_small_steps() -> None:
    decoder = _Inflating()
    prefix = resilience._body._stepped(decoder, b"z" * 65_536, 65_536)
    assert prefix == b"z" * 65_536
    assert decoder.fed < 100  # stopped once the bound came out, not after all 64 KiB
    assert resilience._body._stepped(_Inflating(), b"bad", 10) is None


def test_a_truncated_gzip_prefix_decodes_as_far_as_it_goes() -> None:
    whole = gzip.compress(bytes(range(256)) * 64)
    headers = httpx.Headers({"content-encoding": "gzip"})
    prefix = resilience._body.decoded_prefix(headers, whole[: len(whole) // 2])
    assert (bytes(range(256)) * 64).startswith(prefix)
