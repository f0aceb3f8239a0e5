"""Stack, StackTransport and wrap(): composition, closing, and existing clients."""

from __future__ import annotations

import httpx
import pytest

import resilience
from adapters.simulators import RunningServer
from resilience import Classify, Kind, Stack, outcome, wrap

pytestmark = pytest.mark.anyio


class Recorder(httpx.AsyncBaseTransport):
    """A third-party transport placed between layers: records what passes and its close."""

    def __init__(self, inner: httpx.AsyncBaseTransport, log: list[str], name: str) -> None:
        self.inner, self.log, self.name = inner, log, name

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.log.append(f"{self.name}:{request.method} {request.url.path}")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        self.log.append(f"{self.name}:closed")
        await self.inner.aclose()


def test_stack_lists_layers_outermost_first_and_describes_them() -> None:
    classify = Classify(peek_limit=1024)
    stack = Stack(lambda inner: inner, classify)
    assert stack.layers[1] is classify
    assert len(stack) == 2
    described = stack.describe()
    assert described[1] == {"layer": "Classify", "classifier": classify.classifier,
                            "peek_limit": 1024}  # fmt: skip
    assert str(described[0]["layer"]).endswith("<locals>.<lambda>")
    assert "Classify" in repr(stack)


def test_stack_refuses_what_is_not_a_layer() -> None:
    with pytest.raises(TypeError, match="not a layer"):
        Stack("retry")  # type: ignore[arg-type]


def test_stack_transport_defaults_to_a_fresh_http_transport() -> None:
    transport = Stack(Classify()).transport()
    assert isinstance(transport, resilience.StackTransport)
    assert isinstance(transport.inner.inner, httpx.AsyncHTTPTransport)  # type: ignore[attr-defined]


async def test_third_party_transport_between_layers(core_server: RunningServer) -> None:
    log: list[str] = []
    stack = Stack(
        lambda inner: Recorder(inner, log, "outer"),
        Classify(),
        lambda inner: Recorder(inner, log, "inner"),
    )
    transport = stack.transport(httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(base_url=core_server.url, transport=transport) as client:
        response = await client.get("/status/503")
        assert outcome(response).classification.kind is Kind.SERVER_ERROR
    assert log == ["outer:GET /status/503", "inner:GET /status/503", "outer:closed",
                   "inner:closed"]  # fmt: skip


async def test_stack_transport_is_an_async_context_manager() -> None:
    log: list[str] = []
    async with Stack(Classify()).transport(Recorder(httpx.AsyncHTTPTransport(), log, "net")):
        pass
    assert log == ["net:closed"]


class ClassifierSpy(resilience.LayerTransport):
    """An outer transport that notes which classifier the call context holds on the way in."""

    seen: list[str]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(resilience._context.call_context(request).classifier.name)
        return await self.inner.handle_async_request(request)


async def test_outer_layers_see_the_stack_classifier_before_classify_runs(
    core_server: RunningServer,
) -> None:
    vendor = resilience.HTTPClassifier(name="vendor")
    ClassifierSpy.seen = []
    stack = Stack(ClassifierSpy, Classify(vendor))
    assert stack.classifier is vendor
    assert Stack(ClassifierSpy).classifier.name == "http"
    async with httpx.AsyncClient(base_url=core_server.url, transport=stack.transport()) as client:
        response = await client.get("/status/204")
    assert ClassifierSpy.seen == ["vendor"]
    assert outcome(response).classification.vendor == "vendor"


async def test_each_call_gets_a_fresh_context(core_server: RunningServer) -> None:
    transport = Stack(Classify()).transport(httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(base_url=core_server.url, transport=transport) as client:
        request = client.build_request("GET", "/status/404")
        first = await client.send(request)
        second = await client.send(request)
    assert first.extensions["resilience.call"] is not second.extensions["resilience.call"]
    assert "resilience.call" not in request.extensions


async def test_wrap_keeps_everything_the_client_had(core_server: RunningServer) -> None:
    hooks: list[int] = []

    async def on_response(response: httpx.Response) -> None:
        hooks.append(response.status_code)

    client = httpx.AsyncClient(
        base_url=core_server.url,
        headers={"X-Team": "voice"},
        auth=("user", "pa55word"),
        cookies={"session": "abc"},
        timeout=httpx.Timeout(7.0),
        event_hooks={"response": [on_response]},
    )
    async with client:
        same = wrap(client, Stack(Classify()))
        assert same is client
        assert resilience.is_wrapped(client)
        response = await client.get("/echo")
        echoed = response.json()
        assert outcome(response).classification.kind is Kind.SUCCESS
    assert echoed["headers"]["x-team"] == "voice"
    assert echoed["headers"]["authorization"].startswith("Basic ")
    assert echoed["headers"]["cookie"] == "session=abc"
    assert client.timeout == httpx.Timeout(7.0)
    assert str(client.base_url).rstrip("/") == core_server.url
    assert hooks == [200]


async def test_wrap_wraps_every_mount(core_server: RunningServer) -> None:
    log: list[str] = []
    mounted = Recorder(httpx.AsyncHTTPTransport(), log, "mount")
    client = httpx.AsyncClient(mounts={"http://127.0.0.1": mounted})
    async with wrap(client, Stack(Classify())):
        response = await client.get(f"{core_server.url}/status/500")
    assert outcome(response).classification.kind is Kind.SERVER_ERROR
    assert log == ["mount:GET /status/500", "mount:closed"]


async def test_wrap_refuses_a_wrapped_client() -> None:
    async with httpx.AsyncClient(transport=Stack(Classify()).transport()) as client:
        with pytest.raises(ValueError, match="already"):
            wrap(client, Stack(Classify()))
    async with httpx.AsyncClient() as plain:
        wrap(plain, Stack(Classify()))
        with pytest.raises(ValueError, match="already"):
            wrap(plain, Stack(Classify()))


def test_wrap_refuses_a_sync_client() -> None:
    with httpx.Client() as client, pytest.raises(TypeError, match="AsyncClient"):
        wrap(client, Stack(Classify()))  # type: ignore[arg-type]
