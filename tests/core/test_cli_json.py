"""The fast indented JSON writer gives, byte for byte, what `json.dumps(indent=2)` gives."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.cli_json import Unsupported, indented_json
from workbench.cli_output import dumps

scalars = (st.none() | st.booleans() | st.integers() | st.text()
           | st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(values)
def test_the_text_is_the_standard_encoders(value: Any) -> None:
    assert indented_json(value) == json.dumps(value, indent=2, allow_nan=False)


def test_a_summary_like_value() -> None:
    value = {"format": "onnx", "nodes": 2, "macs": 10**20, "ratio": 0.1, "empty": [],
             "none": {}, "layers": [{"name": "/a/Conv\u00e9\n\"", "shape": [1, "batch", None],
                                     "ok": True, "no": False}, {"name": "b", "shape": None}]}
    assert indented_json(value) == json.dumps(value, indent=2) == dumps(value)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_raise_and_dumps_writes_null(bad: float) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        indented_json({"x": [1, bad]})
    assert json.loads(dumps({"x": [1, bad]}))["x"] == [1, None]


class Named:
    def __str__(self) -> str:
        return "named"


@pytest.mark.parametrize("value", [{"x": Named()}, {1: "int key"}, [True, 2.5, Named()],
                                   {"sub": [{"k": Named()}]}])
def test_other_values_are_left_to_the_standard_encoder(value: Any) -> None:
    with pytest.raises(Unsupported):
        indented_json(value)
    assert dumps(value) == json.dumps(value, default=str, indent=2, allow_nan=False)
