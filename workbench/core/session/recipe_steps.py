"""The typed steps of a recipe: pass, train, distill, evaluate, benchmark and export.

Each step is a frozen dataclass that converts to and from the plain dict a recipe file holds
(`{"pass": NAME, "params": {...}}`, `{"train": {...}}`, `{"distill": {...}}`, ...). Fields
that belong to one machine (a checkpoint folder, resuming, the device) are never part of a
step: they are not written, and a file that names them is refused by the schema.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from workbench.core.errors import InvalidParameterError
from workbench.core.measure.benchmark import BenchConfig
from workbench.core.train.training import TrainConfig

log = logging.getLogger(__name__)

MACHINE_LOCAL = ("checkpoint_dir", "resume", "device", "strategy")  # never written or read
TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig)
                     if f.name not in MACHINE_LOCAL)
BENCH_FIELDS = tuple(f.name for f in dataclasses.fields(BenchConfig)
                     if f.name not in MACHINE_LOCAL)
STEP_KINDS = ("pass", "train", "distill", "evaluate", "benchmark", "export")


@dataclass(frozen=True)
class PassStep:
    """Apply the optimization pass `pass_` with `params` (checked by its ParamSpecs)."""

    pass_: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"pass": self.pass_, "params": dict(self.params)}


@dataclass(frozen=True)
class TrainStep:
    """Train (or fine-tune) the current variant on `dataset`."""

    dataset: str
    config: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"train": {"dataset": self.dataset, **_config_dict(self.config)}}


@dataclass(frozen=True)
class DistillStep:
    """Distill a teacher into the current variant. The teacher is a nested recipe, so the
    file is self-contained: replaying it rebuilds the teacher first."""

    dataset: str
    teacher: Any  # a Recipe (the teacher's own lineage)
    config: TrainConfig = field(default_factory=TrainConfig)
    temperature: float = 4.0
    alpha: float = 0.7
    transfer: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"distill": {"dataset": self.dataset, "teacher": self.teacher.to_json(body=True),
                            "temperature": self.temperature, "alpha": self.alpha,
                            "transfer": self.transfer, **_config_dict(self.config)}}


@dataclass(frozen=True)
class EvaluateStep:
    """Score the current variant on `dataset`'s test split (recorded for the comparison)."""

    dataset: str
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"evaluate": {"dataset": self.dataset, "seed": self.seed}}


@dataclass(frozen=True)
class BenchmarkStep:
    """Measure the current variant's latency (recorded for the comparison)."""

    config: BenchConfig = field(default_factory=BenchConfig)

    def to_dict(self) -> dict[str, Any]:
        values = {k: getattr(self.config, k) for k in BENCH_FIELDS}
        values["batch_sizes"] = list(values["batch_sizes"])
        return {"benchmark": {k: v for k, v in values.items() if v is not None}}


@dataclass(frozen=True)
class ExportStep:
    """Write the current variant to `path` (relative to the working folder)."""

    path: str
    format: str | None = None  # None: from the extension
    opset: int = 18

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "opset": self.opset}
        if self.format is not None:
            out["format"] = self.format
        return {"export": out}


Step = PassStep | TrainStep | DistillStep | EvaluateStep | BenchmarkStep | ExportStep


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    return {k: getattr(config, k) for k in TRAIN_FIELDS}


def _train_config(values: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from a step's fields; machine-local and other keys are ignored."""
    config = TrainConfig(**{k: values[k] for k in TRAIN_FIELDS if k in values})
    if isinstance(config.lr, int):
        config = dataclasses.replace(config, lr=float(config.lr))
    return config


def step_from_dict(data: dict[str, Any], recipe_from_json: Any) -> Step:
    """The typed step of a dict already checked by the schema (or recorded in a lineage).

    Old lineage entries `{"pass": "train", "params": {...}}` become a TrainStep, or a
    DistillStep when they name their teacher. `recipe_from_json` parses a nested teacher.
    """
    if "pass" in data:
        name, params = data["pass"], dict(data.get("params") or {})
        if name != "train":
            return PassStep(name, params)
        dataset = params.get("dataset")
        if not isinstance(dataset, str):
            raise InvalidParameterError("A training step must name its dataset.")
        if not params.get("alpha"):
            return TrainStep(dataset, _train_config(params))
        if not isinstance(params.get("teacher"), dict):
            raise InvalidParameterError("This distillation step cannot be replayed: it was "
                                        "recorded before recipes named the teacher.")
        return DistillStep(dataset, recipe_from_json(params["teacher"]), _train_config(params),
                           float(params.get("temperature", 4.0)), float(params["alpha"]),
                           bool(params.get("transfer", False)))
    if "train" in data:
        body = data["train"]
        return TrainStep(body["dataset"], _train_config(body))
    if "distill" in data:
        body = data["distill"]
        return DistillStep(body["dataset"], recipe_from_json(body["teacher"]),
                           _train_config(body), float(body.get("temperature", 4.0)),
                           float(body.get("alpha", 0.7)), bool(body.get("transfer", False)))
    if "evaluate" in data:
        body = data["evaluate"]
        return EvaluateStep(body["dataset"], int(body.get("seed", 0)))
    if "benchmark" in data:
        body = dict(data["benchmark"] or {})
        values = {k: body[k] for k in BENCH_FIELDS if k in body}
        if "batch_sizes" in values:
            values["batch_sizes"] = list(values["batch_sizes"])
        return BenchmarkStep(BenchConfig(**values))
    if "export" in data:
        body = data["export"]
        return ExportStep(body["path"], body.get("format"), int(body.get("opset", 18)))
    raise InvalidParameterError(f"A recipe step needs one of {', '.join(STEP_KINDS)}.")


def step_kind(step: Step) -> str:
    """`pass`, `train`, `distill`, `evaluate`, `benchmark` or `export`."""
    return next(iter(step.to_dict()))


def describe(step: Step) -> str:
    """One short line for progress: `prune.structured ratio=0.5`, `train digits 4 epochs`."""
    if isinstance(step, PassStep):
        params = " ".join(f"{k}={v}" for k, v in step.params.items())
        return f"{step.pass_} {params}".strip()
    if isinstance(step, TrainStep):
        return f"train on {step.dataset}, {step.config.epochs} epochs"
    if isinstance(step, DistillStep):
        return (f"distill {step.teacher.source} on {step.dataset}, "
                f"{step.config.epochs} epochs")
    if isinstance(step, EvaluateStep):
        return f"evaluate on {step.dataset}"
    if isinstance(step, BenchmarkStep):
        return f"benchmark ({step.config.runtime})"
    return f"export {step.path}"
