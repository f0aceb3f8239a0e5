"""benchmarks/ablation.py cuts the parts it names out of the express lane, and only those.

The script rewrites the lane's handler from its source by anchor lines; these tests keep the
anchors in step with the lane, so that a change to the lane cannot leave the ablation timing a
variant that cuts nothing, or the wrong lines.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import httpx
import pytest

from benchmarks import ablation, compare
from resilience import _express

LANE = textwrap.dedent(inspect.getsource(_express.ExpressTransport.handle_async_request))


@pytest.mark.parametrize("name", list(ablation.CUTS))
def test_each_cut_removes_its_part_and_compiles(name: str) -> None:
    start, end, replacement = ablation.CUTS[name]
    cut = ablation._cut_source(start, end, replacement)
    ast.parse(cut)  # a handler still
    assert start not in cut
    assert cut != LANE
    if replacement is not None:
        assert replacement in cut


def test_a_missing_anchor_is_a_clear_error() -> None:
    with pytest.raises(LookupError, match="update CUTS"):
        ablation._cut_source("no such line in the lane", None, None)


@pytest.mark.anyio
async def test_every_variant_answers_a_request() -> None:
    inner = httpx.MockTransport(lambda request: httpx.Response(200, content=b"ok"))
    for name, make in ablation.variants().items():
        if name == ablation.PEER:
            pytest.importorskip("httpx_retries")
        client, call = make(inner, compare.URL)
        async with client:
            await call()
            response = await client.get(compare.URL)
            assert response.status_code == 200, name
