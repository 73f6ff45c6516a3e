"""Property-based fuzzing: recipes, settings, pass parameters, safetensors and ONNX files.

Whatever the input, the answer is a result or a `WorkbenchError` (one sentence for the
user), never another exception. The default run tries a bounded number of examples per
property; `pytest -m fuzz` tries many more.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_onnx_mlp
from workbench.core.errors import WorkbenchError

EXAMPLES = [25, pytest.param(1000, marks=pytest.mark.fuzz)]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)


def _run(examples: int, strategy: Any, prop: Callable[[Any], None]) -> None:
    settings(max_examples=examples, deadline=None, database=None,
             suppress_health_check=[HealthCheck.function_scoped_fixture,
                                    HealthCheck.too_slow])(given(strategy)(prop))()


def _recipe_like() -> Any:
    step = st.fixed_dictionaries({"pass": st.sampled_from(["prune.magnitude", "train", "x"])
                                  | json_values, "params": json_values})
    return st.fixed_dictionaries({
        "workbench_recipe": st.sampled_from([1, 1, 2, "1"]),
        "source": st.sampled_from(["zoo:mlp", ""]) | json_values,
        "load": st.fixed_dictionaries({"arch": json_values, "input_shape": json_values,
                                       "num_classes": json_values}) | json_values,
        "steps": st.lists(step, max_size=3) | json_values}) | json_values


@pytest.mark.parametrize("examples", EXAMPLES)
def test_recipes_validate_or_refuse(examples: int) -> None:
    from workbench.core.session.recipe import Recipe

    def prop(data: Any) -> None:
        try:
            recipe = Recipe.from_json(data)
        except WorkbenchError:
            return
        assert isinstance(recipe.source, str)
        assert "trust" not in recipe.load
        for step in recipe.steps:
            assert isinstance(step.to_dict(), dict)
            assert Recipe.from_json(recipe.to_json()) == recipe

    _run(examples, _recipe_like(), prop)


@pytest.mark.parametrize("examples", EXAMPLES)
def test_settings_files_never_break_start_up(examples: int, tmp_path: Path) -> None:
    from workbench.core.session.settings import Settings

    path = tmp_path / "settings.json"
    text = json_values.map(json.dumps) | st.binary(max_size=200).map(
        lambda b: b.decode("latin-1"))

    def prop(content: str) -> None:
        path.write_text(content, encoding="utf-8", errors="surrogateescape")
        s = Settings(path)
        assert s.device in ("cpu", "cuda")
        assert all(isinstance(r, str) for r in s.recent_files)

    _run(examples, text, prop)


@pytest.mark.parametrize("examples", EXAMPLES)
def test_pass_parameters_validate_or_refuse(examples: int) -> None:
    from workbench.core.passes.base import parse_params
    from workbench.core.passes.registry import discover

    passes = list(discover().passes.values())
    value = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10) \
        | st.lists(st.text(max_size=5) | st.integers(), max_size=3)

    def prop(case: tuple[Any, dict[str, Any]]) -> None:
        cls, values = case
        with contextlib.suppress(WorkbenchError):
            parse_params(cls, values)

    cases = st.sampled_from(passes).flatmap(lambda cls: st.tuples(st.just(cls), st.dictionaries(
        st.sampled_from([s.name for s in cls.param_specs()] or ["x"]) | st.text(max_size=5),
        value, max_size=4)))
    _run(examples, cases, prop)


def _mutations(blob: bytes) -> Any:
    """Truncations, byte flips and garbage tails of a valid file."""
    n = len(blob)
    return st.one_of(
        st.integers(0, n - 1).map(lambda k: blob[:k]),
        st.tuples(st.integers(0, n - 1), st.integers(0, 255)).map(
            lambda t: blob[:t[0]] + bytes([t[1]]) + blob[t[0] + 1:]),
        st.binary(min_size=1, max_size=64).map(lambda tail: blob + tail),
        st.binary(min_size=1, max_size=256))


@pytest.mark.parametrize("examples", EXAMPLES)
def test_mutated_safetensors_load_or_refuse(examples: int, tmp_path: Path) -> None:
    from safetensors.torch import save

    from workbench.core.model.loaders import load_model
    from workbench.core.model.zoo import build_zoo

    blob = save(build_zoo("mlp").model.state_dict())
    path = tmp_path / "m.safetensors"

    def prop(data: bytes) -> None:
        path.write_bytes(data)
        with contextlib.suppress(WorkbenchError):
            load_model(str(path), arch="zoo:mlp")

    _run(examples, _mutations(blob), prop)


@pytest.mark.parametrize("examples", EXAMPLES)
def test_mutated_onnx_load_or_refuse(examples: int, tmp_path: Path) -> None:
    from workbench.core.model.loaders import load_model

    blob = make_onnx_mlp(tmp_path / "mlp.onnx").read_bytes()
    path = tmp_path / "m.onnx"

    def prop(data: bytes) -> None:
        path.write_bytes(data)
        with contextlib.suppress(WorkbenchError):
            load_model(str(path))

    _run(examples, _mutations(blob), prop)
