"""The public surface: complete and sorted ``__all__``, and the contract's error tree."""

from __future__ import annotations

import types

import httpx
import pytest

import adapters
import resilience


@pytest.mark.parametrize("module", [resilience, adapters], ids=lambda m: m.__name__)
def test_all_is_sorted_and_complete(module: types.ModuleType) -> None:
    assert module.__all__ == sorted(module.__all__)
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), name
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations"}
    }
    assert public == set(module.__all__)


def test_rejected_errors_are_transport_errors() -> None:
    for cls in (
        resilience.CircuitOpenError,
        resilience.LockedOutError,
        resilience.RateLimitedError,
        resilience.DeadlineExceededError,
    ):
        assert issubclass(cls, resilience.RejectedError)
        assert issubclass(cls, resilience.ResilienceError)
        assert issubclass(cls, httpx.TransportError)
    assert issubclass(resilience.DeadlineExceededError, httpx.TimeoutException)


def test_rejected_error_carries_request_and_retry_after() -> None:
    request = httpx.Request("GET", "https://api.example.com/x")
    err = resilience.CircuitOpenError("open", request=request, retry_after=3.5)
    assert err.request is request
    assert err.retry_after == 3.5
    assert str(err) == "open"


def test_api_errors_are_http_status_errors() -> None:
    assert issubclass(resilience.APIError, httpx.HTTPStatusError)
    assert issubclass(resilience.APIError, resilience.ResilienceError)
    assert issubclass(resilience.ValidationError, resilience.BadRequestError)
    assert issubclass(resilience.AccountLockedError, resilience.ForbiddenError)


def test_kind_is_a_str_enum_with_the_contract_values() -> None:
    values = {k.value for k in resilience.Kind}
    assert {
        "success", "not_modified", "rate_limited", "server_error", "network", "timeout", "auth",
        "locked_out", "forbidden", "not_found", "conflict", "validation", "bad_request",
        "client_error",
    } <= values  # fmt: skip
    assert resilience.Kind.RATE_LIMITED == "rate_limited"
    assert str(resilience.Kind.AUTH) == "auth"


def test_classification_is_frozen() -> None:
    verdict = resilience.Classification(kind=resilience.Kind.SUCCESS)
    with pytest.raises(AttributeError):
        verdict.kind = resilience.Kind.AUTH  # type: ignore[misc]


def test_vendor_error_normalises_messages_and_freezes_details() -> None:
    error = resilience.VendorError(status=400, messages=["a", "b"], details={"f": "bad"})
    assert error.messages == ("a", "b")
    with pytest.raises(TypeError):
        error.details["f"] = "x"  # type: ignore[index]
