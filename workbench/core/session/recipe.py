"""Recipes: the ordered passes that made a variant, replayable headless.

A recipe is JSON: `{"workbench_recipe": 1, "source": ..., "load": {...}, "steps": [...]}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import InvalidParameterError, ModelNotFoundError, first_line
from workbench.core.fileio import atomic_write_text
from workbench.core.model.variant import Variant, check_input_shape

RECIPE_VERSION = 1


@dataclass
class Recipe:
    source: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    load: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, variant: Variant) -> Recipe:
        load = {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in variant.metadata.get("load_options", {}).items()
                if v not in (None, False) and k != "trust"}  # trust is never stored
        return cls(variant.source, [dict(s) for s in variant.recipe], load)

    def to_json(self) -> dict[str, Any]:
        return {"workbench_recipe": RECIPE_VERSION, "source": self.source, "load": self.load,
                "steps": self.steps}

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_json(), indent=2, default=str) + "\n")

    @classmethod
    def load_file(cls, path: str | Path) -> Recipe:
        path = Path(path)
        if not path.exists():
            raise ModelNotFoundError(f"No such recipe: {path}")
        try:
            if path.stat().st_size > MAX_RECIPE_BYTES:
                raise InvalidParameterError(f"{path.name} is too large for a recipe.")
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else first_line(exc)
            raise InvalidParameterError(f"{path.name} is not a JSON recipe: {reason}.") from exc
        return cls.from_json(data, path.name)

    @classmethod
    def from_json(cls, data: Any, name: str = "recipe") -> Recipe:
        """Validate a parsed recipe: every field's type, and nothing nested where a plain
        value belongs."""
        if not isinstance(data, dict) or data.get("workbench_recipe") != RECIPE_VERSION:
            raise InvalidParameterError(f"{name} is not a Workbench recipe (version "
                                        f"{RECIPE_VERSION}).")
        source, steps = data.get("source"), data.get("steps", [])
        if not isinstance(source, str) or not source or len(source) > 4096:
            raise InvalidParameterError(f"{name}: 'source' must be a model path or zoo name.")
        if not isinstance(steps, list) or len(steps) > MAX_STEPS:
            raise InvalidParameterError(f"{name}: 'steps' must be a list (at most {MAX_STEPS}).")
        checked = [_check_step(name, i, step) for i, step in enumerate(steps)]
        raw_load = data.get("load") or {}
        if not isinstance(raw_load, dict):
            raise InvalidParameterError(f"{name}: 'load' must be an object.")
        load: dict[str, Any] = {}  # never "trust": trust does not come from a file
        if raw_load.get("arch") is not None:
            if not isinstance(raw_load["arch"], str) or len(raw_load["arch"]) > 300:
                raise InvalidParameterError(f"{name}: load.arch must be an architecture name.")
            load["arch"] = raw_load["arch"]
        if raw_load.get("input_shape") is not None:
            try:
                load["input_shape"] = check_input_shape(raw_load["input_shape"])
            except InvalidParameterError as exc:
                raise InvalidParameterError(f"{name}: load.input_shape: {exc}") from None
        if raw_load.get("num_classes") is not None:
            n = raw_load["num_classes"]
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1_000_000:
                raise InvalidParameterError(f"{name}: load.num_classes must be a positive "
                                            "integer.")
            load["num_classes"] = n
        return cls(source, checked, load)

    def replay(self, on_step: Callable[[int, str], None] | None = None,
               trust: bool = False) -> Any:
        """Load the source and apply every step; return the last PassResult or Analysis.

        `trust` (never read from the file) allows a pickled source, or an architecture named
        by an import path, to be loaded.
        """
        from workbench.core.graph.analysis import analyse, open_model
        from workbench.core.jobs import run_job
        from workbench.core.passes import apply_pass
        from workbench.core.passes.registry import discover

        registry = discover()
        current: Any = run_job(open_model(self.source, trust=trust, **self.load))
        result: Any = current
        for i, step in enumerate(self.steps):
            if on_step is not None:
                on_step(i, step["pass"])
            if step["pass"] == "train":
                current = run_job(analyse(_replay_train(current.variant, step["params"])))
                result = current
                continue
            result = apply_pass(registry.get(step["pass"]), current, step["params"])
            current = result.analysis
        return result


MAX_RECIPE_BYTES = 1_000_000
MAX_STEPS = 1000
MACHINE_LOCAL = ("checkpoint_dir", "resume", "device")  # never replayed from a file


def _check_step(name: str, i: int, step: Any) -> dict[str, Any]:
    where = f"{name}: step {i + 1}"
    if not isinstance(step, dict) or not isinstance(step.get("pass"), str):
        raise InvalidParameterError(f"{where} must be an object with a 'pass' name.")
    params = step.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidParameterError(f"{where}: 'params' must be an object.")
    for key, value in params.items():
        plain = (str, int, float, bool, type(None))
        if isinstance(value, list):
            if not all(isinstance(v, plain) for v in value):
                raise InvalidParameterError(f"{where}: parameter {key!r} nests lists or "
                                            "objects; only plain values are allowed.")
        elif not isinstance(value, plain):
            raise InvalidParameterError(f"{where}: parameter {key!r} must be a plain value "
                                        "or a list of them.")
    return {"pass": step["pass"], "params": dict(params)}


def _replay_train(variant: Variant, params: dict[str, Any]) -> Variant:
    """Replay a training step: the same config and dataset, on this machine."""
    import dataclasses

    from workbench.core.jobs import run_job
    from workbench.core.train.data import load_dataset
    from workbench.core.train.training import TrainConfig, train

    if params.get("alpha"):
        raise InvalidParameterError("A distillation step cannot be replayed yet: the recipe "
                                    "does not name its teacher.")
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)
                if f.name not in MACHINE_LOCAL}
    values = {k: v for k, v in params.items() if k in defaults}
    for key, value in values.items():
        want = type(defaults[key])
        ok = isinstance(value, want) and isinstance(value, bool) == (want is bool)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise InvalidParameterError(f"A training step's {key} must be a {want.__name__}, "
                                        f"not {value!r}.")
    cfg = TrainConfig(**values)
    cfg.validate()
    if not variant.inputs or not isinstance(params.get("dataset"), str):
        raise InvalidParameterError("A training step needs a dataset and a model with a "
                                    "declared input shape.")
    spec = variant.inputs[0]
    dataset = load_dataset(params["dataset"], spec.shape, seed=cfg.seed, input_dtype=spec.dtype)
    return run_job(train(variant, dataset, cfg)).variant
