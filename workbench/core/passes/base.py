"""The pass API: typed parameters, `requires` / `run` / `ensures`, and the driver.

Shape after onnx_ir's pass infrastructure (itself from torch.fx's `PassBase`): a pass is a
class with declared parameters; `apply_pass` validates them, checks the backend, runs the
pass on a *copy*, verifies the input was left untouched, and measures before and after.

A pass is code Workbench does not control (plugins are passes too), so `apply_pass` contains
it: whatever it raises, returns or takes too long over ends as one `PassError` sentence, and
the input variant is never replaced.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from workbench.core.errors import (
    CancelledError,
    InvalidParameterError,
    WorkbenchError,
    first_line,
)
from workbench.core.jobs import CancelToken
from workbench.core.model.variant import Variant, new_variant_id
from workbench.core.params import ParamSpec as ParamSpec  # re-exported for passes
from workbench.core.params import check_values, param_specs, parse_values
from workbench.core.params import param as param  # re-exported for passes

log = logging.getLogger(__name__)

CATEGORIES = ("prune", "quantize", "distill", "convert")
MODEL_TYPES = {"torch": "a torch nn.Module", "onnx": "an onnx ModelProto"}
_NAMED_NONFINITE = 5  # tensors named in a refusal, then a tally
_T = TypeVar("_T")


class PassError(WorkbenchError):
    """A pass cannot run on this variant (wrong backend, nothing to prune, ...)."""


class PassTimeoutError(PassError):
    """A pass ran past `PassContext.time_limit_s` and was abandoned."""


@dataclass
class PassContext:
    """What a pass may use: a device, calibration data, progress, cancel, and a log.

    `device` is the user's choice (cpu, cuda, cuda:N or mps; checked by the Session): a
    pass that computes with a model (calibration, scoring, fine-tuning) may do it there, on
    a copy; the model it returns is brought back to the CPU, where every variant lives.
    `time_limit_s` (None: no limit) abandons a pass whose `run` takes longer, with a
    PassTimeoutError; the pass then runs on in a daemon thread, its cancel token set, until
    it ends on its own (threads cannot be killed).
    """

    device: str = "cpu"
    data: Any = None  # a core dataset (train/val splits) when the pass needs samples
    progress: Callable[[float, str], None] = lambda fraction, message: None
    cancel: CancelToken = field(default_factory=CancelToken)
    log: list[str] = field(default_factory=list)
    time_limit_s: float | None = None
    memory_limit: int | None = None  # bytes an isolated pass may use (None: the default)


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
    # False: `apply_pass` refuses a variant whose weights hold NaN or ±Inf (most passes
    # rank, cluster or calibrate on weight values, which such values break)
    handles_nonfinite: ClassVar[bool] = False
    # True: `run` goes to a child process (`passes.isolated`) under the memory ceiling,
    # killed on cancel; its model comes back onto `skeleton(variant, params)`
    isolated: ClassVar[bool] = False

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

    def skeleton(self, variant: Variant, params: Any) -> Any:
        """The model `run` starts changing, rebuilt the same way in another process (an
        isolated pass's result is applied to it)."""
        return self.clone_model(variant)

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
        return param_specs(cls.Params)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"name": cls.name, "title": cls.title, "category": cls.category,
                "backends": list(cls.backends), "description": cls.description,
                "handles_nonfinite": cls.handles_nonfinite,
                "params": [p.to_json() for p in cls.param_specs()]}


def parse_params(pass_cls: type[Pass], values: Mapping[str, Any] | None) -> Any:
    """Build and validate `pass_cls.Params` from a mapping (strings from the CLI allowed)."""
    return parse_values(pass_cls.Params, values, pass_cls.name)


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

    The input is never changed: the driver checks its weights' fingerprint afterwards. Any
    failure of the pass (an exception, a wrong return value, a model of another backend,
    running past `ctx.time_limit_s`) is a PassError.
    """
    from workbench.core.graph.analysis import Analysis, analyse
    from workbench.core.jobs import call_cancellable, run_job

    ctx = ctx or PassContext()
    name = pass_obj.name
    variant = source.variant if isinstance(source, Analysis) else source
    # cheap checks first: parameters and backend, before any analysis
    if isinstance(params, pass_obj.Params):
        p = params
        check_values(p, name)
    else:
        p = parse_params(type(pass_obj), params)
    limit = _time_limit(ctx)
    if variant.backend not in pass_obj.backends:
        raise PassError(f"{name} works on {' or '.join(pass_obj.backends)} models; "
                        f"{variant.name} is {variant.backend}.")
    if not pass_obj.handles_nonfinite:
        _refuse_nonfinite(name, source if isinstance(source, Analysis) else None, variant)
    _contained(name, "failed while checking its input", lambda: pass_obj.requires(variant, p))
    before_analysis = source if isinstance(source, Analysis) else run_job(analyse(source))
    # a pass run in a child process cannot change the variant here: no fingerprint needed
    stamp = "" if _isolating(pass_obj) else fingerprint(variant)
    start = time.perf_counter()
    try:
        output = _run_limited(pass_obj, variant, p, ctx, limit)
    except PassError as exc:  # (an abandoned pass may still be running: no fingerprint)
        if not isinstance(exc, PassTimeoutError) and stamp and fingerprint(variant) != stamp:
            raise PassError(f"{str(exc).rstrip('.')}, and it changed its input variant, "
                            "which may be damaged.") from exc
        raise
    seconds = time.perf_counter() - start
    params_json = {k: v for k, v in dataclasses.asdict(p).items()}

    def finish(token: CancelToken) -> tuple[Variant, Any]:
        if stamp and fingerprint(variant) != stamp:
            raise PassError(f"{name} changed its input variant; the result is discarded.")
        backend = _check_output(name, variant, output)
        output.model = _on_cpu(output.model)
        new = Variant(
            name=f"{variant.name}·{name}", backend=backend,
            model=output.model, format=output.format or variant.format,
            inputs=output.inputs if output.inputs is not None else variant.inputs,
            source=variant.source, parent=variant.id,
            recipe=(*variant.recipe, {"pass": name, "params": params_json}),
            metadata={**variant.metadata, **output.metadata}, id=new_variant_id())
        _contained(name, "failed while checking its result",
                   lambda: pass_obj.ensures(variant, new, p, output))
        token.check()
        analysis = _contained(name, "returned a model Workbench cannot analyse",
                              lambda: run_job(analyse(new, token)))
        return new, analysis

    # checking and analysing a big result takes seconds (torch.export): a cancel must not
    # wait for it
    new, after_analysis = call_cancellable(finish, ctx.cancel)
    report = PassReport(name, params_json, figures(before_analysis),
                        figures(after_analysis), seconds, output.warnings, output.details)
    return PassResult(new, report, after_analysis)


def _on_cpu(model: Any) -> Any:
    """A torch model that a pass left on a GPU, moved to the CPU (variants live there)."""
    parameters = getattr(model, "parameters", None)
    if parameters is None:
        return model
    if any(p.device.type != "cpu" for p in parameters()):
        return model.to("cpu")
    return model


def _contained(pass_name: str, what: str, call: Callable[[], _T]) -> _T:
    """`call()`, with anything but a WorkbenchError turned into one PassError sentence."""
    try:
        return call()
    except WorkbenchError:
        raise
    except (Exception, SystemExit) as exc:  # a plugin's sys.exit() must not end the app
        raise PassError(f"{pass_name} {what}: {type(exc).__name__}: {first_line(exc)}"
                        ) from exc


def _time_limit(ctx: PassContext) -> float | None:
    limit = ctx.time_limit_s
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) \
            or not math.isfinite(limit) or limit <= 0:
        raise InvalidParameterError(
            f"The time limit must be a positive number of seconds, not {limit!r}.")
    return float(limit)


def _refuse_nonfinite(pass_name: str, analysis: Any, variant: Variant) -> None:
    """PassError naming the weight tensors that hold NaN or ±Inf, if any (from the
    Analysis's statistics when there is one, else one `isfinite` check per tensor)."""
    from workbench.core.graph.stats import nonfinite_text, nonfinite_weights

    bad = (analysis.stats.nonfinite_tensors() if analysis is not None
           else nonfinite_weights(variant))
    if not bad:
        return
    named = [f"{t} ({nonfinite_text(nan, inf)})" for t, (nan, inf) in
             list(bad.items())[:_NAMED_NONFINITE]]
    if len(bad) > _NAMED_NONFINITE:
        named.append(f"{len(bad) - _NAMED_NONFINITE} more tensors")
    raise PassError(f"{pass_name} cannot run on weights holding NaN or Inf values, and "
                    f"{variant.name} has them in {', '.join(named)}.")


class _LinkedCancel(CancelToken):
    """A pass's own cancel token: cancelled with the caller's, or alone when abandoned."""

    def __init__(self, parent: CancelToken) -> None:
        super().__init__()
        self._parent = parent

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or self._parent.cancelled

    @property
    def paused(self) -> bool:
        return self._parent.paused and not self._event.is_set()

    def wait_while_paused(self, timeout: float | None = None) -> None:
        if not self._event.is_set():
            self._parent.wait_while_paused(timeout)

    def check(self) -> None:
        if self.cancelled:
            raise CancelledError("Cancelled.")


def _run_limited(pass_obj: Pass, variant: Variant, params: Any, ctx: PassContext,
                 limit: float | None) -> Any:
    """`pass_obj.run(...)`, contained; with a limit, in a daemon thread that is abandoned
    (its cancel token set, its progress muted, its result discarded) once time runs out."""
    name = pass_obj.name
    if _isolating(pass_obj):
        from workbench.core.passes.isolated import run_isolated

        return _contained(name, "failed",
                          lambda: run_isolated(pass_obj, variant, params, ctx, limit))
    if limit is None:
        return _contained(name, "failed", lambda: pass_obj.run(variant, params, ctx))
    abandoned = threading.Event()
    token = _LinkedCancel(ctx.cancel)
    progress = ctx.progress

    def report(fraction: float, message: str) -> None:
        if not abandoned.is_set():
            progress(fraction, message)

    inner = dataclasses.replace(ctx, progress=report, cancel=token)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["output"] = _contained(name, "failed",
                                       lambda: pass_obj.run(variant, params, inner))
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"pass {name}", daemon=True)
    deadline = time.monotonic() + limit
    thread.start()
    while thread.is_alive():
        remaining = deadline - time.monotonic()
        if remaining <= 0 or ctx.cancel.cancelled:
            abandoned.set()
            token.cancel()  # a pass that checks its token ends soon; none is killed
            if ctx.cancel.cancelled:
                raise CancelledError("Cancelled.")
            raise PassTimeoutError(f"{name} took longer than {limit:g} s; it was abandoned "
                                   "and its result discarded.")
        thread.join(min(remaining, 0.05))
    if "error" in box:
        raise box["error"]
    return box.get("output")


def _isolating(pass_obj: Pass) -> bool:
    """The pass runs in a child process (it asks to, and this platform can)."""
    if not pass_obj.isolated:
        return False
    from workbench.core.child_job import can_isolate

    return can_isolate()


def _check_output(pass_name: str, variant: Variant, output: Any) -> str:
    """The backend of a pass's output; PassError unless it is a PassOutput holding a model
    of that backend."""
    if not isinstance(output, PassOutput):
        raise PassError(f"{pass_name} returned {type(output).__name__} instead of a "
                        "PassOutput; the result is discarded.")
    backend = output.backend or variant.backend
    if backend not in MODEL_TYPES:
        raise PassError(f"{pass_name} returned a model for the unknown backend {backend!r} "
                        f"(Workbench knows {', '.join(MODEL_TYPES)}).")
    if backend == "torch":
        import torch

        ok = isinstance(output.model, torch.nn.Module)
    else:
        import onnx

        ok = isinstance(output.model, onnx.ModelProto)
    if not ok:
        raise PassError(f"{pass_name} returned {type(output.model).__name__} where "
                        f"{MODEL_TYPES[backend]} was expected; the result is discarded.")
    return backend
