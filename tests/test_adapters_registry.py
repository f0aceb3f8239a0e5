"""The adapter registry: names, lookups and third-party entry points."""

from __future__ import annotations

import importlib.metadata
from types import SimpleNamespace

import pytest

import adapters
import resilience
from adapters import dialstack


def test_unknown_adapter_names_the_available_ones() -> None:
    with pytest.raises(LookupError, match=r"no adapter named .nope.; available: .*dialstack"):
        adapters.get("nope")


def test_available_lists_the_built_in_adapters() -> None:
    assert {"dialstack", "get2dial", "dialnexa"} <= set(adapters.available())
    assert adapters.available() == sorted(adapters.available())


def _fake_entry_point(name: str, value: object) -> SimpleNamespace:
    return SimpleNamespace(name=name, load=lambda: value)


def test_third_party_adapters_come_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    fourth = resilience.Adapter(
        name="fourth",
        classifier=resilience.HTTPClassifier(name="fourth"),
        build_stack=lambda **overrides: resilience.Stack(resilience.Classify()),
    )
    points = [_fake_entry_point("fourth", fourth), _fake_entry_point("broken", object())]
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group: points if group == "resilience.adapters" else [],
    )
    assert "fourth" in adapters.available()
    assert adapters.get("fourth") is fourth
    assert isinstance(fourth.transport(), resilience.StackTransport)
    with pytest.raises(TypeError, match=r"not resilience\.Adapter"):
        adapters.get("broken")


def test_a_plugin_that_fails_to_import_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Failing:
        name, value = "acme", "acme_adapter:adapter"

        def load(self) -> object:
            raise ModuleNotFoundError("No module named 'acme_adapter'")

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [Failing()])
    with pytest.raises(ImportError, match=r"adapter 'acme' \(acme_adapter:adapter\) failed"):
        adapters.get("acme")
    assert adapters.get("dialstack") is dialstack.adapter  # the built-ins are untouched


def test_broken_entry_point_metadata_does_not_hide_the_built_ins(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(group: str) -> object:
        raise TypeError("Pair.__new__() missing 1 required positional argument: 'value'")

    monkeypatch.setattr(importlib.metadata, "entry_points", broken)
    assert adapters.available() == ["dialnexa", "dialstack", "get2dial"]
    assert "could not read the 'resilience.adapters' entry points" in caplog.text
