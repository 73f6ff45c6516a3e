"""Declared parameters: a dataclass field with a type, a range, choices and help text.

Pass parameters, `TrainConfig` and `BenchConfig` are declared once with `param()`; the GUI
forms, the CLI flags and the validation are all derived from that declaration.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from workbench.core.errors import InvalidParameterError

log = logging.getLogger(__name__)

T = TypeVar("T")


def param(default: Any, *, help: str = "", min: float | None = None,
          max: float | None = None, choices: tuple[Any, ...] | None = None,
          widget: str | None = None, allow_nonfinite: bool = False) -> Any:
    """A parameter: a dataclass field with a range, choices and help text.

    `widget` hints the GUI form: "slider" for a ratio, "nodes" for a node list picked in
    the graph, "path" for a file. A float parameter refuses NaN and ±inf unless
    `allow_nonfinite`.
    """
    meta = {"help": help, "min": min, "max": max, "choices": choices, "widget": widget,
            "allow_nonfinite": allow_nonfinite}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: copy.copy(default), metadata=meta)
    return field(default=default, metadata=meta)

def local(default: Any) -> Any:
    """A machine-local setting (a device, a folder): not a declared parameter, never in a
    form, a generated CLI flag or a recipe."""
    return field(default=default, metadata={"internal": True})


@dataclass(frozen=True)
class ParamSpec:
    """One parameter, as a GUI form or `workbench passes` sees it."""

    name: str
    type: str  # "int" | "float" | "bool" | "str" | "list"
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    widget: str | None = None
    allow_nonfinite: bool = False  # a float that may be NaN or ±inf
    nullable: bool = False  # None is allowed (it means "not set": the library's default)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def param_specs(cls: type) -> list[ParamSpec]:
    """The parameters of a dataclass, in declaration order; fields without `param()`
    metadata (machine-local settings) are left out."""
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        meta = f.metadata
        tp = hints.get(f.name, str)
        specs.append(ParamSpec(f.name, _type_name(tp), default,
                               meta.get("help", ""), meta.get("min"), meta.get("max"),
                               meta.get("choices"), meta.get("widget"),
                               bool(meta.get("allow_nonfinite", False)), _nullable(tp)))
    return specs


def parse_values(cls: type[T], values: Mapping[str, Any] | None, owner: str,
                 **fixed: Any) -> T:
    """Build and validate `cls` from a mapping (strings from the CLI allowed); `fixed`
    fields (machine-local: device, folders) are passed through unchecked."""
    values = dict(values or {})
    specs = {s.name: s for s in param_specs(cls)}
    unknown = [k for k in values if k not in specs]
    if unknown:
        raise InvalidParameterError(
            f"{owner} has no parameter {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(specs) or 'no parameters'}.")
    kwargs = {}
    for name, spec in specs.items():
        value = _coerce(owner, spec, values[name]) if name in values else spec.default
        _check(owner, spec, value)
        kwargs[name] = value
    return cls(**kwargs, **fixed)


def check_values(obj: Any, owner: str) -> None:
    """Validate an already-built dataclass against its declaration."""
    for spec in param_specs(type(obj)):
        _check(owner, spec, getattr(obj, spec.name))


def _nullable(tp: Any) -> bool:
    return type(None) in typing.get_args(tp)


def _type_name(tp: Any) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if _nullable(tp) and len(args) == 1:
        tp = args[0]
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return "list"
    if tp is bool:
        return "bool"
    if tp is int:
        return "int"
    if tp is float:
        return "float"
    return "str"

def _coerce(pass_name: str, spec: ParamSpec, value: Any) -> Any:
    if spec.nullable and (value is None or (isinstance(value, str)
                                            and value.strip().lower() in ("", "none"))):
        return None
    try:
        if spec.type == "bool":
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if spec.type == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if spec.type == "float":
            return float(value)
        if spec.type == "list":
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return list(value)
        if isinstance(value, bool) and spec.choices and {"on", "off"} <= set(spec.choices):
            return "on" if value else "off"  # a switch that gained an "auto" keeps its bools
        return str(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
        raise InvalidParameterError(
            f"{pass_name}: {spec.name} must be a{'n' if spec.type == 'int' else ''} "
            f"{spec.type}, not {value!r}.") from None

def _check(pass_name: str, spec: ParamSpec, value: Any) -> None:
    if value is None and spec.nullable:
        return
    if spec.choices is not None and value not in spec.choices:
        raise InvalidParameterError(
            f"{pass_name}: {spec.name} must be one of {', '.join(map(str, spec.choices))}, "
            f"not {value!r}.")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) and not spec.allow_nonfinite:
            raise InvalidParameterError(
                f"{pass_name}: {spec.name} must be a finite number, not {value}.")
        if spec.min is not None and value < spec.min:
            raise InvalidParameterError(
                f"{pass_name}: {spec.name} must be at least {spec.min}, not {value}.")
        if spec.max is not None and value > spec.max:
            raise InvalidParameterError(
                f"{pass_name}: {spec.name} must be at most {spec.max}, not {value}.")
