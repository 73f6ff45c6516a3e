#!/usr/bin/env python
"""Remake the zoo's trained weights with the project's own trainer.

Each recipe `workbench/core/model/zoo_weights/NAME-DATASET.yaml` is run with
`workbench run RECIPE -o ...` (seeded: the same weights on the CPU with the same torch). The
weights are then stored beside the recipe as NAME-DATASET.safetensors, in fp16 when fp32
would pass 1 MB, with their provenance in the safetensors header: the dataset, input shape,
class count, and the validation and test accuracy of the stored (rounded) weights, measured
by the Session's own evaluate.

    python tools/train_zoo_weights.py              # every recipe
    python tools/train_zoo_weights.py resnet-mini  # the recipes of one zoo model
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "workbench" / "core" / "model" / "zoo_weights"
MAX_FP32_BYTES = 1_000_000

sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="zoo names (default: every recipe)")
    args = parser.parse_args()
    recipes = sorted(WEIGHTS.glob("*.yaml"))
    if args.models:
        recipes = [r for r in recipes if _zoo_name(r) in args.models]
    if not recipes:
        print("No recipe to run.", file=sys.stderr)
        return 1
    for recipe in recipes:
        remake(recipe)
    return 0


def remake(recipe: Path) -> dict[str, str]:
    """Train `recipe`, store its weights small with their provenance, return the metadata."""
    import torch
    from safetensors.torch import load_file, save_file

    import workbench
    from workbench.core.model.zoo import ZOO
    from workbench.core.session.recipe import Recipe
    from workbench.core.session.recipe_steps import TrainStep

    name = _zoo_name(recipe)
    plan = Recipe.load_file(recipe)
    train = next(s for s in plan.steps if isinstance(s, TrainStep))
    shape = tuple(plan.load.get("input_shape") or ZOO[name].input_shape)
    classes = int(plan.load.get("num_classes") or ZOO[name].num_classes)
    command = ["workbench", "run", recipe.name, "-o", f"{recipe.stem}.safetensors"]
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "trained.safetensors"
        start = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
        subprocess.run([sys.executable, "-m", "workbench", "run", str(recipe), "-o", str(raw)],
                       check=True, env=env)
        seconds = time.perf_counter() - start
        state = load_file(str(raw))
    fp32_bytes = sum(t.numel() * t.element_size() for t in state.values())
    half = fp32_bytes > MAX_FP32_BYTES
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    out = WEIGHTS / f"{recipe.stem}.safetensors"
    with tempfile.TemporaryDirectory() as tmp:
        stored = Path(tmp) / out.name
        save_file(state, str(stored))
        val, test = _accuracies(stored, name, train.dataset, train.config.seed)
    metadata = {
        "dataset": train.dataset, "input_shape": ",".join(map(str, shape)),
        "num_classes": str(classes), "val_accuracy": f"{val:.4f}",
        "test_accuracy": f"{test:.4f}", "recipe": recipe.name, "command": " ".join(command),
        "seed": str(train.config.seed), "stored_dtype": "float16" if half else "float32",
        "workbench": workbench.__version__, "torch": torch.__version__.split("+")[0],
    }
    save_file(state, str(out), metadata=metadata)
    print(f"{out.name}: {out.stat().st_size / 1e6:.2f} MB ({metadata['stored_dtype']}), "
          f"val {val:.2%}, test {test:.2%}, trained in {seconds:.0f} s")
    return metadata


def _accuracies(path: Path, name: str, dataset: str, seed: int) -> tuple[float, float]:
    """Validation and test accuracy of the weights in `path`, joined to the zoo model."""
    from workbench.core.session.session import Session

    session = Session(remember_recent=False)
    entry = session.run(session.open(str(path), arch=name))
    result: list[Any] = [session.run(session.evaluate(dataset, entry.id, seed, split=split))
                         for split in ("val", "test")]
    return float(result[0].accuracy), float(result[1].accuracy)


def _zoo_name(recipe: Path) -> str:
    """`resnet-mini-digits.yaml` → `resnet-mini`."""
    return recipe.stem.rsplit("-", 1)[0]


if __name__ == "__main__":
    sys.exit(main())
