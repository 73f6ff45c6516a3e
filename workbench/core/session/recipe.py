"""Recipes: how a variant was made, as typed steps, saved as YAML or JSON and replayable.

A recipe is `{"workbench_recipe": 1, "source": ..., "load": {...}, "steps": [...]}`; each
step is one of `recipe_steps` (pass, train, distill, evaluate, benchmark, export). Files are
checked against `recipe_schema.recipe_schema()` before anything runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import InvalidParameterError, ModelNotFoundError, first_line
from workbench.core.fileio import atomic_write_text
from workbench.core.model.arch_spec import check_arch_kwargs
from workbench.core.model.variant import Variant, check_input_shape
from workbench.core.session.recipe_schema import (
    MAX_RECIPE_BYTES,
    MAX_STEPS,
    RECIPE_VERSION,
    read_recipe_file,
    validate,
)
from workbench.core.session.recipe_steps import (
    MACHINE_LOCAL,
    PassStep,
    Step,
    step_from_dict,
)

log = logging.getLogger(__name__)

__all__ = ["MACHINE_LOCAL", "MAX_RECIPE_BYTES", "MAX_STEPS", "RECIPE_VERSION", "Recipe"]


@dataclass(frozen=True)
class Recipe:
    """A source, how to load it, and the typed steps that follow."""

    source: str
    steps: tuple[Step, ...] = ()
    load: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, variant: Variant) -> Recipe:
        """The recipe of a variant's lineage (machine-local fields and trust left out)."""
        return cls(variant.source, tuple(step_from_dict(s, _nested) for s in variant.recipe),
                   _load_options(variant.metadata.get("load_options", {})))

    def to_json(self, body: bool = False) -> dict[str, Any]:
        """The plain dict a file holds (`body`: without the version, for a nested teacher)."""
        out: dict[str, Any] = {} if body else {"workbench_recipe": RECIPE_VERSION}
        out.update({"source": self.source, "load": dict(self.load),
                    "steps": [s.to_dict() for s in self.steps]})
        return out

    def dumps(self, fmt: str = "json") -> str:
        """The recipe as JSON or YAML text."""
        data = json.loads(json.dumps(self.to_json(), default=str))  # plain types only
        if fmt == "yaml":
            import yaml

            return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
        return json.dumps(data, indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        """Write the recipe: YAML for a .yaml/.yml path, JSON otherwise (atomically)."""
        fmt = "yaml" if Path(path).suffix.lower() in (".yaml", ".yml") else "json"
        atomic_write_text(path, self.dumps(fmt))

    @classmethod
    def load_file(cls, path: str | Path) -> Recipe:
        """Read and check a YAML or JSON recipe; an error names the field and its line."""
        path = Path(path)
        if not path.is_file():
            raise ModelNotFoundError(f"No such recipe: {path}")
        try:
            data, lines = read_recipe_file(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidParameterError(f"{path.name} cannot be read as a recipe: "
                                        f"{first_line(exc)}.") from exc
        return cls.from_json(data, path.name, lines)

    @classmethod
    def from_json(cls, data: Any, name: str = "recipe",
                  lines: dict[tuple[Any, ...], int] | None = None) -> Recipe:
        """Validate parsed recipe data against the schema and build the typed recipe."""
        validate(data, name, lines)
        return _from_body(data, name)

    def check(self) -> None:
        """Check what the schema cannot, before any work: every pass exists and takes its
        parameters, every training and benchmark configuration is valid."""
        from workbench.core.passes.base import parse_params
        from workbench.core.passes.registry import discover
        from workbench.core.session.recipe_steps import BenchmarkStep, DistillStep, TrainStep

        registry = discover()
        for i, step in enumerate(self.steps):
            try:
                if isinstance(step, PassStep):
                    parse_params(type(registry.get(step.pass_)), step.params)
                elif isinstance(step, (TrainStep, DistillStep)):
                    step.config.validate()
                    if isinstance(step, DistillStep):
                        step.teacher.check()
                elif isinstance(step, BenchmarkStep):
                    step.config.validate()
            except InvalidParameterError as exc:
                raise InvalidParameterError(f"Step {i + 1}: {exc}") from None

    def replay(self, on_step: Callable[[int, str], None] | None = None,
               trust: bool = False) -> Any:
        """Replay in a new headless Session; return the run (its `.variant` is the last).

        `trust` (never read from the file) allows a pickled source, or an architecture named
        by an import path, to be loaded.
        """
        from workbench.core.session.recipe_replay import StepStarted, replay_task
        from workbench.core.session.session import Session

        session = Session(remember_recent=False)

        def progress(p: Any) -> None:
            if on_step is not None and isinstance(p.payload, StepStarted) and p.payload.depth == 0:
                on_step(p.payload.index, p.payload.kind)

        return session.run(replay_task(session, self, trust=trust), progress)


def _nested(data: dict[str, Any]) -> Recipe:
    """A teacher recorded in a lineage or a file (already checked)."""
    return _from_body(data, "teacher")


def _from_body(data: dict[str, Any], name: str) -> Recipe:
    steps = tuple(step_from_dict(s, _nested) for s in data.get("steps") or [])
    return Recipe(data["source"], steps, _load_options(data.get("load") or {}, name))


def _load_options(raw: dict[str, Any], name: str = "recipe") -> dict[str, Any]:
    """The load options a recipe keeps: never `trust`, which does not come from a file."""
    load: dict[str, Any] = {}
    if raw.get("arch") is not None:
        load["arch"] = str(raw["arch"])
    if raw.get("input_shape") is not None:
        try:
            load["input_shape"] = list(check_input_shape(list(raw["input_shape"])))
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"{name}: load.input_shape: {exc}") from None
    if raw.get("num_classes") is not None:
        load["num_classes"] = int(raw["num_classes"])
    if raw.get("arch_kwargs"):
        load["arch_kwargs"] = check_arch_kwargs(raw["arch_kwargs"], f"{name}: load.arch_kwargs")
    if raw.get("strict") is False:
        load["strict"] = False
    return load
