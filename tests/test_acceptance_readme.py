"""Issues 3, 4 and 6: "the README documents every default", checked against the code.

Each layer's numeric defaults are read from its attrs fields and looked up in the README: in the
settings table under the layer's heading, or in the Python example that spells out ``Retry``,
``Backoff`` and ``Telemetry`` with their defaults. Changing a default without the README (or the
other way round) fails here. So does a README snippet a new user pastes first that no longer
runs as written.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import attrs
import pytest

import resilience

README = Path(__file__).resolve().parent.parent / "README.md"

#: Under which ``###`` heading each layer's settings table is.
TABLES: dict[str, type] = {
    "The Retry-After gate": resilience.RetryAfterGate,
    "The retry budget": resilience.RetryBudget,
    "Circuit breaker": resilience.CircuitBreaker,
    "Lockout guard": resilience.LockoutGuard,
}


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _section(name: str) -> str:
    text = _readme()
    start = text.index(f"<!-- section:{name} -->")
    return text[start : text.index(f"<!-- /section:{name} -->", start)]


def _subsections(text: str) -> dict[str, str]:
    parts = re.split(r"^### (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _number(cell: str) -> float | None:
    match = re.fullmatch(r"([\d ]+(?:\.\d+)?)(?: s)?", cell.strip())
    return float(match.group(1).replace(" ", "")) if match else None


def _table(text: str) -> dict[str, str]:
    """``| `name` | value | ... |`` rows: name -> value cell."""
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", text, flags=re.MULTILINE)
    return {name: value.strip() for name, value in rows}


def _numeric_defaults(cls: type) -> dict[str, float]:
    found: dict[str, float] = {}
    for field in attrs.fields(cls):
        default = field.default
        if field.name.startswith("_") or not field.init:
            continue
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            found[field.name] = float(default)
    return found


@pytest.mark.parametrize("heading", sorted(TABLES))
def test_every_numeric_default_is_in_the_layers_settings_table(heading: str) -> None:
    sections = {**_subsections(_section("retry")), **_subsections(_section("breaker"))}
    assert heading in sections, f"no '### {heading}' in the README"
    table = _table(sections[heading])
    defaults = _numeric_defaults(TABLES[heading])
    assert defaults
    for name, value in defaults.items():
        assert name in table, f"{TABLES[heading].__name__}.{name} is not in the README's table"
        assert _number(table[name]) == value, (name, table[name], value)


def _calls(code: str) -> dict[str, dict[str, object]]:
    """Keyword arguments that are literals, per called name, in a Python example."""
    found: dict[str, dict[str, object]] = {}
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            name = node.func.id if isinstance(node.func, ast.Name) else name
            literals = found.setdefault(name, {})
            for keyword in node.keywords:
                if keyword.arg is not None and isinstance(keyword.value, ast.Constant):
                    literals[keyword.arg] = keyword.value.value
    return found


def _first_python_block(text: str) -> str:
    match = re.search(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_retry_example_spells_out_every_default() -> None:
    calls = _calls(_first_python_block(_section("retry")))
    for cls in (resilience.Retry, resilience.Backoff):
        shown = calls[cls.__name__]
        for field in attrs.fields(cls):
            default = field.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                continue
            assert field.name in shown, f"{cls.__name__}({field.name}=...) is not shown"
            assert shown[field.name] == default, (field.name, shown[field.name], default)
    # The one computed default: the Retry-After cap follows a shorter deadline.
    assert resilience.Retry().max_retry_after == calls["Retry"]["max_retry_after"]


def test_the_telemetry_example_spells_out_its_defaults() -> None:
    section = _section("telemetry")
    example = next(
        block
        for block in re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
        if "Telemetry(" in block
    )
    shown = _calls(example)["Telemetry"]
    defaults = resilience.Telemetry()
    assert shown["client_spans"] is defaults.client_spans is True
    assert shown["clock"] is defaults.clock is None


@pytest.mark.parametrize(
    ("results_file", "least"),
    # compare.md: four success-path tables, the outage, 10,000 calls, the breaker.
    [("compare.md", 7), ("instructions_loopback.md", 1), ("head_to_head_paired.md", 1)],
)
def test_the_readmes_benchmark_tables_are_the_committed_run(results_file: str, least: int) -> None:
    """Issue 7: the benchmark command reproduces the README's table.

    Every table and summary line that ``benchmarks/compare.py`` (or ``instructions.py
    --loopback``, or ``head_to_head.py --loopback --paired``) wrote to ``benchmarks/results/``
    stands in the README's Benchmarks section as it is, so a new run committed without the
    README (or a hand-edited figure) fails here.
    """
    results = README.parent / "benchmarks" / "results" / results_file
    section = _section("benchmarks")
    blocks = [block for block in results.read_text(encoding="utf-8").split("\n\n") if block.strip()]
    assert len(blocks) >= least
    missing = [block.splitlines()[0] for block in blocks if block.strip() not in section]
    assert missing == []


def _python_block_after(heading: str) -> str:
    """The first ```python block after ``heading`` in the README."""
    text = _readme()
    start = text.index(heading)
    begin = text.index("```python\n", start) + len("```python\n")
    return text[begin : text.index("```", begin)]


@pytest.mark.parametrize(
    "heading", ["## Three ways in", "## Simulators"], ids=["three-ways-in", "simulators"]
)
def test_a_readme_snippet_runs_as_written(heading: str) -> None:
    """What a new user pastes first: every name it uses is defined, every call accepted."""
    code = _python_block_after(heading)
    exec(compile(code, f"README.md {heading}", "exec"), {})  # noqa: S102 - the README's own code
