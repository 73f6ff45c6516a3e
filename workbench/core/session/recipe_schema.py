"""The JSON Schema of a recipe, built from the step dataclasses and the passes' ParamSpecs,
and the reader of recipe files (YAML or JSON) that reports an error with its field and line:
`recipe.yaml:12: steps[2].params.ratio: 1.5 is greater than the maximum of 0.9`.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from workbench.core.errors import InvalidParameterError, first_line
from workbench.core.measure.benchmark import DEVICES, RUNTIMES
from workbench.core.model.arch_spec import MAX_ARCH_KWARGS, MAX_KEY_CHARS, MAX_TEXT_CHARS
from workbench.core.session.recipe_steps import BENCH_FIELDS, MACHINE_LOCAL
from workbench.core.train.training import OPTIMIZERS, SCHEDULES, train_param_specs

log = logging.getLogger(__name__)

RECIPE_VERSION = 1
MAX_RECIPE_BYTES = 1_000_000
MAX_STEPS = 1000
_PLAIN = {"type": ["string", "number", "boolean", "null"]}
_LINEAGE_ONLY = ("alpha", "temperature", "teacher", "transfer", "dataset")
_ARCH_KWARGS = {  # constructor arguments of `arch`: plain values, bounded (see arch_spec)
    "type": ["object", "null"], "maxProperties": MAX_ARCH_KWARGS,
    "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": MAX_KEY_CHARS},
    "additionalProperties": {"anyOf": [{"type": "string", "maxLength": MAX_TEXT_CHARS},
                                       {"type": ["number", "boolean", "null"]}]}}


def _spec_schema(spec: Any) -> dict[str, Any]:
    """One ParamSpec as a JSON Schema."""
    kinds: dict[str, dict[str, Any]] = {"int": {"type": "integer"}, "float": {"type": "number"},
             "bool": {"type": "boolean"}, "str": {"type": "string"},
             "list": {"type": "array", "items": _PLAIN}}
    out = dict(kinds.get(spec.type, {}))
    if spec.type == "bool":  # the CLI's strings are accepted by the pass, so here too
        out = {"type": ["boolean", "string"]}
    if spec.type in ("int", "float") and not spec.allow_nonfinite:
        if spec.min is not None:
            out["minimum"] = spec.min
        if spec.max is not None:
            out["maximum"] = spec.max
    if spec.choices and spec.type != "list":
        out["enum"] = list(spec.choices)
    return out


def _train_properties() -> dict[str, Any]:
    props: dict[str, Any] = {s.name: _spec_schema(s) for s in train_param_specs()}
    props["lr"] = {"type": "number", "exclusiveMinimum": 0}
    props.update({
        "optimizer": {"enum": list(OPTIMIZERS)}, "schedule": {"enum": list(SCHEDULES)},
        "step_size": {"type": "integer", "minimum": 1}, "gamma": {"type": "number"},
        "monitor": {"enum": ["val_accuracy", "val_loss"]},
        "keep_sparsity": {"type": "boolean"},
        "dataset": {"type": "string", "minLength": 1, "maxLength": 4096}})
    return props


def _bench_properties() -> dict[str, Any]:
    props = {
        "runtime": {"enum": list(RUNTIMES)},
        "batch_sizes": {"type": "array", "minItems": 1, "maxItems": 64,
                        "items": {"type": "integer", "minimum": 1}},
        "threads": {"type": ["integer", "null"], "minimum": 1},
        "warmup": {"type": "integer", "minimum": 0},
        "iters": {"type": "integer", "minimum": 1},
        "duration_s": {"type": ["number", "null"], "exclusiveMinimum": 0}}
    assert set(props) == set(BENCH_FIELDS), "BenchConfig changed: update the recipe schema"
    return props


@lru_cache(maxsize=1)
def recipe_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every recipe file is checked against."""
    from workbench.core.passes.registry import discover

    train = _train_properties()
    distill = {**train, "teacher": {"$ref": "#/$defs/body"},
               "temperature": {"type": "number", "exclusiveMinimum": 0},
               "alpha": {"type": "number", "minimum": 0, "maximum": 1},
               "transfer": {"type": "boolean"}}
    legacy_train = {**train, "alpha": {"type": "number", "minimum": 0, "maximum": 1},
                    "temperature": {"type": "number", "exclusiveMinimum": 0},
                    "transfer": {"type": "boolean"}, "teacher": {"$ref": "#/$defs/body"},
                    "device": {"enum": list(DEVICES)}, "checkpoint_dir": {},
                    "resume": {}}  # old lineages recorded these; they are ignored
    per_pass = []
    for pass_name, cls in sorted(discover().passes.items()):
        specs = cls.param_specs()
        per_pass.append({
            "if": {"properties": {"pass": {"const": pass_name}}, "required": ["pass"]},
            "then": {"properties": {"params": {
                "type": "object", "additionalProperties": False,
                "properties": {s.name: _spec_schema(s) for s in specs}}}}})
    per_pass.append({
        "if": {"properties": {"pass": {"const": "train"}}, "required": ["pass"]},
        "then": {"properties": {"params": {"type": "object", "required": ["dataset"],
                                           "properties": legacy_train}}}})
    step = {
        "type": "object",
        "properties": {
            "pass": {"type": "string", "minLength": 1, "maxLength": 200},
            "params": {"type": "object", "additionalProperties": {
                "anyOf": [_PLAIN, {"type": "array", "items": _PLAIN}]}},
            "train": {"type": "object", "required": ["dataset"], "properties": train,
                      "additionalProperties": False},
            "distill": {"type": "object", "required": ["dataset", "teacher"],
                        "properties": distill, "additionalProperties": False},
            "evaluate": {"type": "object", "required": ["dataset"], "additionalProperties": False,
                         "properties": {"dataset": train["dataset"],
                                        "seed": {"type": "integer", "minimum": 0}}},
            "benchmark": {"type": ["object", "null"], "properties": _bench_properties(),
                          "additionalProperties": False},
            "export": {"type": "object", "required": ["path"], "additionalProperties": False,
                       "properties": {
                           "path": {"type": "string", "minLength": 1, "maxLength": 4096},
                           "format": {"enum": ["onnx", "pt2", "torchscript", "safetensors"]},
                           "opset": {"type": "integer", "minimum": 13, "maximum": 21}}}},
        "additionalProperties": False,
        "oneOf": [{"required": [kind]} for kind in
                  ("pass", "train", "distill", "evaluate", "benchmark", "export")],
        "dependentRequired": {"params": ["pass"]},
        "allOf": per_pass}
    body: dict[str, Any] = {
        "type": "object", "required": ["source"],
        "properties": {
            "source": {"type": "string", "minLength": 1, "maxLength": 4096},
            "load": {"type": ["object", "null"], "additionalProperties": False, "properties": {
                "arch": {"type": ["string", "null"], "maxLength": 300},
                "input_shape": {"type": ["array", "null"], "minItems": 1, "maxItems": 8,
                                "items": {"type": "integer", "minimum": 1}},
                "num_classes": {"type": ["integer", "null"], "minimum": 1,
                                "maximum": 1_000_000},
                "arch_kwargs": _ARCH_KWARGS,
                "strict": {"type": ["boolean", "null"]},
                "trust": {}}},  # accepted and ignored: trust never comes from a file
            "steps": {"type": "array", "maxItems": MAX_STEPS, "items": {"$ref": "#/$defs/step"}}},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Workbench recipe",
        "$defs": {"step": step, "body": {**body, "additionalProperties": False}},
        **body,
        "properties": {**body["properties"], "workbench_recipe": {"const": RECIPE_VERSION},
                       "description": {"type": "string"}},
        "required": ["workbench_recipe", "source"],
        "additionalProperties": False,
    }


def validate(data: Any, name: str = "recipe", lines: dict[tuple[Any, ...], int] | None = None
             ) -> None:
    """Raise InvalidParameterError naming the first bad field (in file order) and its line."""
    from jsonschema import Draft202012Validator

    if not isinstance(data, dict) or data.get("workbench_recipe") != RECIPE_VERSION:
        raise InvalidParameterError(f"{name} is not a Workbench recipe (version "
                                    f"{RECIPE_VERSION}).")
    lines = lines or {}
    try:
        errors = list(Draft202012Validator(recipe_schema()).iter_errors(data))
    except RecursionError:
        raise InvalidParameterError(f"{name} is nested too deeply.") from None
    if not errors:
        return
    found = [_explain(e, lines) for e in errors]
    line, path, message = min(found, key=lambda f: (f[0] or 0, -len(f[1])))
    where = f"{name}:{line}" if line else name
    raise InvalidParameterError(f"{where}: {format_path(path) or 'recipe'}: {message}")


def _explain(error: Any, lines: dict[tuple[Any, ...], int]) -> tuple[int | None, tuple, str]:
    path = tuple(error.absolute_path)
    message = first_line(error.message)
    if error.validator == "additionalProperties":
        extra = [k for k in error.instance if k not in error.schema.get("properties", {})]
        if extra:
            path = (*path, extra[0])
            message = (f"{extra[0]} is machine-local and never read from a recipe"
                       if extra[0] in MACHINE_LOCAL else f"unknown field {extra[0]!r}")
    elif error.validator == "oneOf" and isinstance(error.instance, dict):
        message = "a step has exactly one of pass, train, distill, evaluate, benchmark, export"
    elif error.validator == "dependentRequired":
        message = "params belong to a pass step"
    elif error.validator == "const" and path == ("workbench_recipe",):
        message = f"must be {RECIPE_VERSION}"
    if len(message) > 200:
        message = message[:200] + "…"
    return _line_of(path, lines), path, message


def _line_of(path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = path[:-1]


def format_path(path: tuple[Any, ...]) -> str:
    """`("steps", 2, "params", "ratio")` as `steps[2].params.ratio`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_recipe_file(path: str | Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """The parsed file (YAML for .yaml/.yml, else JSON) and the line of every field."""
    import yaml

    path = Path(path)
    if path.stat().st_size > MAX_RECIPE_BYTES:
        raise InvalidParameterError(f"{path.name} is too large for a recipe.")
    text = path.read_text(encoding="utf-8")
    is_yaml = path.suffix.lower() in (".yaml", ".yml")
    kind = "YAML" if is_yaml else "JSON"
    try:
        data = yaml.safe_load(text) if is_yaml else json.loads(text)
    except RecursionError:
        raise InvalidParameterError(f"{path.name} is not a {kind} recipe: nested too "
                                    "deeply.") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidParameterError(f"{path.name} is not a {kind} recipe: "
                                    f"{first_line(exc)}.") from exc
    try:
        lines = _node_lines(yaml.compose(text), ())
    except RecursionError:
        raise InvalidParameterError(f"{path.name} is nested too deeply.") from None
    except yaml.YAMLError:
        if is_yaml:
            raise
        lines = {}  # JSON that YAML does not read: errors name no line
    except _Aliased:
        raise InvalidParameterError(f"{path.name}: anchors and aliases are not allowed in a "
                                    "recipe.") from None
    return data, lines


class _Aliased(Exception):
    pass


def _node_lines(node: Any, path: tuple[Any, ...], seen: set[int] | None = None
                ) -> dict[tuple[Any, ...], int]:
    """Map every field path to its 1-based line, from a composed YAML node tree."""
    import yaml

    seen = set() if seen is None else seen
    if node is None:
        return {}
    if id(node) in seen:
        raise _Aliased
    seen.add(id(node))
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            lines.update(_node_lines(value, child, seen))
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            lines.update(_node_lines(value, (*path, i), seen))
    return lines
