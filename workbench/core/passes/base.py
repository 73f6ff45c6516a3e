"""The pass API: typed parameters, `requires` / `run` / `ensures`, and the driver.

Shape after onnx_ir's pass infrastructure (itself from torch.fx's `PassBase`): a pass is a
class with declared parameters; `apply_pass` validates them, checks the backend, runs the
pass on a *copy*, verifies the input was left untouched, and measures before and after.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from workbench.core.errors import InvalidParameterError, WorkbenchError
from workbench.core.jobs import CancelToken
from workbench.core.variant import Variant, new_variant_id

CATEGORIES = ("prune", "quantize", "distill", "convert")


class PassError(WorkbenchError):
    """A pass cannot run on this variant (wrong backend, nothing to prune, ...)."""


def param(default: Any, *, help: str = "", min: float | None = None,
          max: float | None = None, choices: tuple[Any, ...] | None = None,
          widget: str | None = None) -> Any:
    """A pass parameter: a dataclass field with a range, choices and help text.

    `widget` hints the GUI form: "slider" for a ratio, "nodes" for a node list picked in
    the graph, "path" for a file.
    """
    meta = {"help": help, "min": min, "max": max, "choices": choices, "widget": widget}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: copy.copy(default), metadata=meta)
    return field(default=default, metadata=meta)


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

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PassContext:
    """What a pass may use: a device, calibration data, progress, cancel, and a log."""

    device: str = "cpu"
    data: Any = None  # a core dataset (train/val splits) when the pass needs samples
    progress: Callable[[float, str], None] = lambda fraction, message: None
    cancel: CancelToken = field(default_factory=CancelToken)
    log: list[str] = field(default_factory=list)


@dataclass
class PassOutput:
    """What `Pass.run` returns: the new model and anything worth reporting."""

    model: Any
    backend: str | None = None  # set when the pass changes backend (torch -> onnx)
    format: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    inputs: Any = None  # new InputSpecs, when they change


@dataclass
class PassReport:
    """Parameters, before/after figures, time taken, warnings and pass-specific details."""

    pass_name: str
    params: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"pass": self.pass_name, "params": self.params, "before": self.before,
                "after": self.after, "seconds": round(self.seconds, 4),
                "warnings": self.warnings, "details": self.details}


@dataclass
class PassResult:
    variant: Variant
    report: PassReport
    analysis: Any = None  # the new variant's Analysis, when the driver computed it


class Pass:
    """Base class of every pass. Subclasses set the class attributes and `run`."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    category: ClassVar[str] = "convert"
    backends: ClassVar[tuple[str, ...]] = ("torch",)
    description: ClassVar[str] = ""

    @dataclass
    class Params:
        pass

    def requires(self, variant: Variant, params: Any) -> None:
        """Raise PassError when the pass cannot run on `variant` with `params`."""

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        raise NotImplementedError

    def ensures(self, before: Variant, after: Variant, params: Any, output: PassOutput
                ) -> None:
        """Raise PassError when the result breaks the pass's promise."""

    def preview(self, variant: Variant, params: Any) -> dict[str, float] | None:
        """A cheap per-layer preview of the effect (e.g. sparsity), or None. Never mutates."""
        return None

    # helpers for subclasses ---------------------------------------------------------------
    @staticmethod
    def clone_model(variant: Variant) -> Any:
        """A deep copy of the variant's model, safe to change."""
        if variant.backend == "onnx":
            import onnx

            model = onnx.ModelProto()
            model.CopyFrom(variant.model)
            return model
        return copy.deepcopy(variant.model)

    @classmethod
    def param_specs(cls) -> list[ParamSpec]:
        hints = typing.get_type_hints(cls.Params)
        specs = []
        for f in dataclasses.fields(cls.Params):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            meta = f.metadata
            specs.append(ParamSpec(f.name, _type_name(hints.get(f.name, str)), default,
                                   meta.get("help", ""), meta.get("min"), meta.get("max"),
                                   meta.get("choices"), meta.get("widget")))
        return specs

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"name": cls.name, "title": cls.title, "category": cls.category,
                "backends": list(cls.backends), "description": cls.description,
                "params": [p.to_json() for p in cls.param_specs()]}


def _type_name(tp: Any) -> str:
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


def parse_params(pass_cls: type[Pass], values: Mapping[str, Any] | None) -> Any:
    """Build and validate `pass_cls.Params` from a mapping (strings from the CLI allowed)."""
    values = dict(values or {})
    specs = {s.name: s for s in pass_cls.param_specs()}
    unknown = [k for k in values if k not in specs]
    if unknown:
        raise InvalidParameterError(
            f"{pass_cls.name} has no parameter {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(specs) or 'no parameters'}.")
    kwargs = {}
    for name, spec in specs.items():
        value = _coerce(pass_cls.name, spec, values[name]) if name in values else spec.default
        _check(pass_cls.name, spec, value)
        kwargs[name] = value
    return pass_cls.Params(**kwargs)


def _coerce(pass_name: str, spec: ParamSpec, value: Any) -> Any:
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
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"{pass_name}: {spec.name} must be a{'n' if spec.type == 'int' else ''} "
            f"{spec.type}, not {value!r}.") from None


def _check(pass_name: str, spec: ParamSpec, value: Any) -> None:
    if spec.choices is not None and value not in spec.choices:
        raise InvalidParameterError(
            f"{pass_name}: {spec.name} must be one of {', '.join(map(str, spec.choices))}, "
            f"not {value!r}.")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if spec.min is not None and value < spec.min:
            raise InvalidParameterError(
                f"{pass_name}: {spec.name} must be at least {spec.min}, not {value}.")
        if spec.max is not None and value > spec.max:
            raise InvalidParameterError(
                f"{pass_name}: {spec.name} must be at most {spec.max}, not {value}.")


def check_subset(pass_name: str, field_name: str, values: list[str],
                 allowed: tuple[str, ...]) -> None:
    """Refuse an empty list, or names outside `allowed`, for a list parameter."""
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise InvalidParameterError(
            f"{pass_name}: {field_name} must name some of {', '.join(allowed)}"
            + (f"; unknown: {', '.join(unknown)}." if unknown else "."))


def fingerprint(variant: Variant) -> str:
    """A hash of every weight of the variant (to prove a pass left its input untouched)."""
    h = hashlib.sha256()
    if variant.backend == "onnx":
        h.update(variant.model.SerializeToString(deterministic=True))
        return h.hexdigest()
    import torch

    for name, t in variant.model.state_dict().items():
        h.update(name.encode())
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous()
            if t.is_quantized:
                t = t.dequantize()
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes()
                     if t.dtype != torch.bool else t.numpy().tobytes())
    return h.hexdigest()


def figures(analysis: Any) -> dict[str, Any]:
    """Parameters, size, MACs and sparsity of an analysed variant."""
    return {"parameters": analysis.graph.parameters, "size_bytes": analysis.graph.size_bytes,
            "macs": analysis.graph.macs, "sparsity": round(analysis.stats.summary.sparsity, 6)}


def apply_pass(pass_obj: Pass, source: Any, params: Mapping[str, Any] | Any = None,
               ctx: PassContext | None = None) -> PassResult:
    """Run `pass_obj` on `source` (an Analysis or a Variant) and return the new variant.

    The input is never changed: the driver checks its weights' fingerprint afterwards.
    """
    from workbench.core.analysis import Analysis, analyse
    from workbench.core.jobs import run_job

    ctx = ctx or PassContext()
    variant = source.variant if isinstance(source, Analysis) else source
    # cheap checks first: parameters and backend, before any analysis
    p = params if isinstance(params, pass_obj.Params) else parse_params(type(pass_obj), params)
    if variant.backend not in pass_obj.backends:
        raise PassError(f"{pass_obj.name} works on {' or '.join(pass_obj.backends)} models; "
                        f"{variant.name} is {variant.backend}.")
    pass_obj.requires(variant, p)
    before_analysis = source if isinstance(source, Analysis) else run_job(analyse(source))
    stamp = fingerprint(variant)
    start = time.perf_counter()
    try:
        output = pass_obj.run(variant, p, ctx)
    except WorkbenchError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PassError(f"{pass_obj.name} failed: {type(exc).__name__}: {first}") from exc
    seconds = time.perf_counter() - start
    if fingerprint(variant) != stamp:
        raise PassError(f"{pass_obj.name} changed its input variant; the result is discarded.")
    params_json = {k: v for k, v in dataclasses.asdict(p).items()}
    new = Variant(
        name=f"{variant.name}·{pass_obj.name}", backend=output.backend or variant.backend,
        model=output.model, format=output.format or variant.format,
        inputs=output.inputs if output.inputs is not None else variant.inputs,
        source=variant.source, parent=variant.id,
        recipe=(*variant.recipe, {"pass": pass_obj.name, "params": params_json}),
        metadata={**variant.metadata, **output.metadata}, id=new_variant_id())
    pass_obj.ensures(variant, new, p, output)
    after_analysis = run_job(analyse(new, ctx.cancel))
    report = PassReport(pass_obj.name, params_json, figures(before_analysis),
                        figures(after_analysis), seconds, output.warnings, output.details)
    return PassResult(new, report, after_analysis)
