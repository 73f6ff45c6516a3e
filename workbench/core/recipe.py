"""Recipes: the ordered passes that made a variant, replayable headless.

A recipe is JSON: `{"workbench_recipe": 1, "source": ..., "load": {...}, "steps": [...]}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import InvalidParameterError, ModelNotFoundError
from workbench.core.fileio import atomic_write_text
from workbench.core.variant import Variant

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
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidParameterError(f"{path.name} is not a JSON recipe: {exc}") from exc
        if not isinstance(data, dict) or data.get("workbench_recipe") != RECIPE_VERSION:
            raise InvalidParameterError(f"{path.name} is not a Workbench recipe (version "
                                        f"{RECIPE_VERSION}).")
        steps = data.get("steps", [])
        if not isinstance(data.get("source"), str) or not isinstance(steps, list) or not all(
                isinstance(s, dict) and isinstance(s.get("pass"), str) for s in steps):
            raise InvalidParameterError(f"{path.name}: a recipe needs a source and a list of "
                                        "steps, each with a pass name.")
        load = {k: v for k, v in (data.get("load") or {}).items()
                if k in ("arch", "input_shape", "num_classes")}  # never "trust" from a file
        if "input_shape" in load and load["input_shape"] is not None:
            load["input_shape"] = tuple(load["input_shape"])
        return cls(data["source"], steps, load)

    def replay(self, on_step: Callable[[int, str], None] | None = None,
               trust: bool = False) -> Any:
        """Load the source and apply every step; return the last PassResult or Analysis.

        `trust` (never read from the file) allows a pickled source to be loaded.
        """
        from workbench.core.analysis import open_model
        from workbench.core.jobs import run_job
        from workbench.core.passes import apply_pass
        from workbench.core.plugins import discover

        registry = discover()
        current: Any = run_job(open_model(self.source, trust=trust, **self.load))
        result: Any = current
        for i, step in enumerate(self.steps):
            if on_step is not None:
                on_step(i, step["pass"])
            result = apply_pass(registry.get(step["pass"]), current, step.get("params") or {})
            current = result.analysis
        return result
