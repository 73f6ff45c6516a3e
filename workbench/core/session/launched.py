"""Training in several processes from the window: the variant's recipe plus a training step,
replayed by `workbench run` under torch's elastic launcher, with live curves from rank 0.
(`launched_jobs` does the same for distillation and prune-and-fine-tune.)

Rank 0 appends one JSON line per epoch to the file `WORKBENCH_METRICS` names; the job tails
it and yields the epochs as they come, so nothing blocks while the workers train. Cancelling
terminates the launcher's process group: the agent stops every rank.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.events import EpochDone
from workbench.core.jobs import CancelledError, CancelToken, Job, Progress
from workbench.core.train.distributed import METRICS_ENV, launch_command


class LaunchError(WorkbenchError):
    """The launched workers failed (their last words are in the message)."""


def start_recipe(variant: Any, folder: Path) -> dict[str, Any]:
    """The recipe (as JSON) that rebuilds `variant` in the workers for evaluation only (a
    teacher): its lineage when that replays cheaply and exactly, else (a lineage that
    trains) the variant written to a `.pt2` in `folder`, which the workers load as it is."""
    from workbench.core.model.export import export_variant
    from workbench.core.session.recipe import Recipe

    recipe = Recipe.of(variant)
    if not _trains(recipe):
        return recipe.to_json()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{variant.id}.pt2"  # training again would give another model
    export_variant(variant, path)
    return Recipe(str(path), (), {}).to_json()


def student_recipe(variant: Any, folder: Path) -> tuple[dict[str, Any], Path | None]:
    """The recipe (as JSON) that rebuilds `variant` in the workers so they can train it, and
    the weights they load into it before training (None: the recipe rebuilds it exactly).

    A lineage that trains is replayed without its training steps, which gives the same
    modules (a `.pt2` holds an eval-mode graph: no dropout and frozen BatchNorm statistics
    when trained again), and the variant's own weights are loaded over them."""
    from workbench.core.model.export import export_variant
    from workbench.core.session.recipe import Recipe

    recipe = Recipe.of(variant)
    if not _trains(recipe):
        return recipe.to_json(), None
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{variant.id}.safetensors"
    export_variant(variant, weights)
    steps = tuple(s for s in recipe.steps if not _is_training(s))
    return Recipe(recipe.source, steps, recipe.load).to_json(), weights


def _is_training(step: Any) -> bool:
    from workbench.core.session.recipe_steps import DistillStep, TrainStep

    return isinstance(step, (TrainStep, DistillStep))


def _trains(recipe: Any) -> bool:
    return any(_is_training(s) for s in recipe.steps)


def train_recipe(variant: Any, dataset: str, config: Any,
                 folder: Path) -> tuple[dict[str, Any], Path | None]:
    """The recipe (as JSON) that rebuilds `variant` and trains it on `dataset`, and the
    weights the workers load before training (see `student_recipe`)."""
    body, weights = student_recipe(variant, folder)
    body["steps"].append({"train": {"dataset": dataset, **train_params(config)}})
    return body, weights


def train_params(config: Any) -> dict[str, Any]:
    """A TrainConfig's fields as a recipe step holds them (no machine-local ones)."""
    return {k: v for k, v in asdict(config).items()
            if k not in ("device", "checkpoint_dir", "resume", "strategy")}


def launched_train(variant: Any, dataset: str, config: Any, nproc: int, folder: Path,
                   cancel: CancelToken, max_restarts: int = 0) -> Job[Path]:
    """Train `variant` in `nproc` processes; the trained weights' file (in `folder`)."""
    body, weights = train_recipe(variant, dataset, config, folder)
    return (yield from launched_recipe(body, config.epochs, nproc, folder, cancel,
                                       max_restarts, device=config.device,
                                       start_weights=weights))


def launched_recipe(body: dict[str, Any], epochs: int, nproc: int, folder: Path,
                    cancel: CancelToken, max_restarts: int = 0, device: str = "cpu",
                    start_weights: Path | None = None) -> Job[Path]:
    """Replay the recipe `body` (one training step of `epochs`) in `nproc` processes; the
    last variant's weights (a safetensors file in `folder`). Rank 0's epochs come as
    `EpochDone` events. `start_weights` go into the model before its first training step."""
    folder.mkdir(parents=True, exist_ok=True)
    # the weights alone: the window puts them in its own copy of the model, which keeps
    # its layers (a reloaded .pt2 is a graph, with nothing left to prune) and its lineage
    recipe, output, metrics = folder / "recipe.json", folder / "trained.safetensors", \
        folder / "metrics.jsonl"
    recipe.write_text(json.dumps(body), encoding="utf-8")
    metrics.unlink(missing_ok=True)
    argv = ["run", str(recipe), "-o", str(output), "--device", device, "--json"]
    if start_weights is not None:
        argv += ["--start-weights", str(start_weights)]
    env = {**os.environ, METRICS_ENV: str(metrics)}
    yield Progress(0.0, f"Starting {nproc} processes…")
    with open(folder / "stdout.txt", "wb") as out, open(folder / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(launch_command(argv, nproc, max_restarts), stdout=out,
                                stderr=err, env=env, start_new_session=True)
    seen = 0
    try:
        while True:
            done = proc.poll() is not None
            records = _read_records(metrics)
            for record in records[seen:]:
                yield Progress(record["epoch"] / max(epochs, 1),
                               f"epoch {record['epoch']}/{epochs} done",
                               EpochDone.of(record))
            seen = len(records)
            if done:
                break
            if cancel.cancelled:
                os.killpg(proc.pid, signal.SIGTERM)  # the agent, and through it every rank
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                raise CancelledError("The run was stopped.")
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        # the models handed to the workers can be big; their recipe and logs stay
        for handed in [*folder.glob("*.pt2"), *([start_weights] if start_weights else [])]:
            handed.unlink(missing_ok=True)
    if proc.returncode != 0 or not output.exists():
        tail = (folder / "stderr.txt").read_text(errors="replace").strip().splitlines()[-3:]
        raise LaunchError(f"The {nproc} training processes failed (exit {proc.returncode}): "
                          + " ".join(tail))
    return output


def train_step(config: Any, dataset: str, **extra: Any) -> dict[str, Any]:
    """The lineage step a training records (as `train()` writes it)."""
    return {"pass": "train", "params": {**asdict(config), "dataset": dataset, "alpha": 0.0,
                                        "temperature": 4.0, **extra}}


def trained_child(variant: Any, weights: Path, name: str, step: dict[str, Any]) -> Any:
    """A child of `variant` holding the launched run's `weights` (the file is removed once
    read), its lineage `step` added."""
    import copy

    from safetensors.torch import load_file

    from workbench.core.model.variant import Variant, new_variant_id, set_mode

    model = copy.deepcopy(variant.model).float()
    model.load_state_dict(load_file(str(weights)))
    weights.unlink(missing_ok=True)  # the child holds them now
    return Variant(name=name, backend="torch", model=set_mode(model, False),
                   format=variant.format, inputs=variant.inputs, source=variant.source,
                   parent=variant.id, recipe=(*variant.recipe, step),
                   metadata=dict(variant.metadata), id=new_variant_id())


def _read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line still being written
            break
    return out


def launched_train_task(session: Any, dataset: str, config: Any, nproc: int,
                        variant_id: str | None = None) -> Any:
    """A Task that trains the selected variant in `nproc` processes; the commit adds the
    trained model (its curves came live from rank 0)."""
    from workbench.core.graph.analysis import analyse
    from workbench.core.session.session import Task

    entry = session.entry(variant_id)
    variant = entry.analysis.variant
    config.validate()
    folder = run_folder(variant, nproc)
    history: list[dict[str, Any]] = []

    def job(token: CancelToken) -> Job[Any]:
        output = yield from collect(launched_train(variant, dataset, config, nproc, folder,
                                                   token), history)
        trained = trained_child(variant, output, f"{variant.name}·trained",
                                train_step(config, dataset))
        return (yield from analyse(trained))

    def commit(analysis: Any) -> Any:
        return session._add(analysis, {"history": history})

    return Task(f"Training {variant.name} in {nproc} processes", job, commit)


def run_folder(variant: Any, nproc: int) -> Path:
    """A new folder for a launched run of `variant` (its recipe, logs and output)."""
    from workbench.core.session.settings import runs_dir

    return runs_dir() / f"{variant.id}-{nproc}proc-{time.strftime('%Y%m%d-%H%M%S')}"


def collect(job: Job[Path], history: list[dict[str, Any]]) -> Job[Path]:
    """`job`'s progress passed on, its epochs kept in `history`."""
    while True:
        try:
            step = next(job)
        except StopIteration as stop:
            result: Path = stop.value
            return result
        if isinstance(step.payload, EpochDone):
            history.append(step.payload.to_json())
        yield step
