"""Replay a recipe through the Session: one worker job runs every step, one commit adds every
variant it made.

The job drives the Session's own use cases (open, apply, train, distill, evaluate, benchmark,
export) on a private scratch Session, so the caller's workspace is only touched by the
commit, on the caller's thread. Progress: a `StepStarted` event per step, then the step's own
events (`EpochDone` per training epoch, ...).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.jobs import CancelToken, Job, Progress
from workbench.core.session.recipe_steps import (
    BenchmarkStep,
    DistillStep,
    EvaluateStep,
    ExportStep,
    PassStep,
    TrainStep,
    describe,
    step_kind,
)

if TYPE_CHECKING:
    from workbench.core.model.variant import Variant
    from workbench.core.session.recipe import Recipe
    from workbench.core.session.session import Session, Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepStarted:
    """Step `index` (from 0) of `total` begins; `depth` 1 is a distillation teacher's."""

    index: int
    total: int
    kind: str
    summary: str
    depth: int = 0


@dataclass
class RecipeRun:
    """What a replay made: every new variant's id (in order), per-step results, the last
    variant, and the last pass's report (None if no pass ran)."""

    variant_ids: list[str]
    steps: list[dict[str, Any]] = field(default_factory=list)
    variant: Variant | None = None
    report: Any = None
    start_weights: Path | None = None  # see `replay_task`
    weights_loaded: bool = False


def replay_task(session: Session, recipe: Recipe, trust: bool = False,
                start_weights: Path | None = None) -> Task[RecipeRun]:
    """A task replaying `recipe`; its commit adds every variant the recipe made to `session`.

    `start_weights` (a safetensors file) go into the model just before its first training or
    distillation step (or at the end): the launched workers of a model whose lineage trains
    rebuild its modules by replaying the lineage without training, then take its weights.

    Everything that needs no work is checked now: the passes and their parameters, the
    training and benchmark settings, the export targets. `trust` is the caller's, never the
    file's.
    """
    from workbench.core.session.session import Session, Task

    recipe.check()
    _check_exports(recipe)

    def job(token: CancelToken) -> Job[tuple[Session, RecipeRun]]:
        scratch = Session(settings=session.settings, remember_recent=False)
        scratch.project = session.project  # checkpoints go to the project's runs folder
        run = RecipeRun([], start_weights=start_weights)
        final = yield from _replay(scratch, recipe, token, run, trust, task, 0)
        if start_weights is not None and not run.weights_loaded:
            _load_weights(scratch, final, start_weights)
        run.variant = scratch.workspace.get(final).analysis.variant
        return scratch, run

    def commit(outcome: tuple[Session, RecipeRun]) -> RecipeRun:
        scratch, run = outcome
        for entry in scratch.workspace.entries():
            added = session._add(entry.analysis, dict(entry.results))
            run.variant_ids.append(added.id)
        return run

    task: Task[RecipeRun] = Task(f"Running the recipe of {recipe.source}", job, commit,
                                 graceful=False)
    return task


def run_recipe(session: Session, recipe: Recipe, on_progress: Any = None,
               trust: bool = False, cancel: CancelToken | None = None,
               start_weights: Path | None = None) -> RecipeRun:
    """Replay `recipe` on this thread (the CLI, tests) and add its variants to `session`."""
    return session.run(replay_task(session, recipe, trust, start_weights), on_progress,
                       cancel)


def _load_weights(scratch: Session, variant_id: str, path: Path) -> None:
    """Load `path` into the replay's own model (`scratch` is this replay's session, so no
    variant of the user's is touched); a clear error when they do not fit."""
    from safetensors.torch import load_file

    from workbench.core.errors import WorkbenchError

    model = scratch.workspace.get(variant_id).analysis.variant.model
    try:
        model.load_state_dict(load_file(str(path)))
    except (RuntimeError, OSError, ValueError) as exc:
        raise WorkbenchError(f"The model's weights ({path.name}) do not fit the model its "
                             f"recipe rebuilds: {str(exc).splitlines()[0]}") from exc


def _check_exports(recipe: Recipe) -> None:
    from workbench.core.fileio import check_target
    from workbench.core.model.export import export_format

    for step in recipe.steps:
        if isinstance(step, ExportStep):
            export_format(step.path, step.format)
            check_target(step.path)


def _replay(scratch: Session, recipe: Recipe, token: CancelToken, run: RecipeRun,
            trust: bool, outer: Task[Any], depth: int) -> Job[str]:
    """Open the source and run every step on `scratch`; return the last variant's id."""
    load = dict(recipe.load)
    if "input_shape" in load:
        load["input_shape"] = tuple(load["input_shape"])
    opened = yield from _run(scratch.open(recipe.source, trust=trust, **load), token, outer)
    current = opened.id
    total = len(recipe.steps)
    for i, step in enumerate(recipe.steps):
        token.check()
        kind = step_kind(step)
        if (run.start_weights is not None and depth == 0 and not run.weights_loaded
                and isinstance(step, (TrainStep, DistillStep))):
            _load_weights(scratch, current, run.start_weights)
            run.weights_loaded = True
        yield Progress(i / max(total, 1), f"[{i + 1}/{total}] {describe(step)}",
                       StepStarted(i, total, kind, describe(step), depth))
        out: dict[str, Any] = {}
        device = scratch.settings.device
        if isinstance(step, PassStep):
            result = yield from _run(scratch.apply(step.pass_, step.params, current), token,
                                     outer)
            current = result.variant.id
            out["report"] = result.report.to_json()
            if depth == 0:
                run.report = result.report
        elif isinstance(step, (TrainStep, DistillStep)):
            config = replace(step.config, device=device, checkpoint_dir=None, resume=False)
            if isinstance(step, TrainStep):
                task = scratch.train(step.dataset, config, current)
            else:
                teacher = yield from _replay(scratch, step.teacher, token, run, trust, outer,
                                             depth + 1)
                task = scratch.distill(step.dataset, config, teacher, step.temperature,
                                       step.alpha, step.transfer, variant_id=current)
            entry = yield from _run(task, token, outer)
            token.check()  # a stopped run is not a replay
            current = entry.id
            out.update(accuracy=entry.results.get("accuracy"),
                       epochs=len(entry.results.get("history") or []))
        elif isinstance(step, EvaluateStep):
            result = yield from _run(scratch.evaluate(step.dataset, current, step.seed), token,
                                     outer)
            out.update(result.to_json() if hasattr(result, "to_json")
                       else {"cosine": result.cosine})
            out.pop("confusion", None)
        elif isinstance(step, BenchmarkStep):
            bench = replace(step.config, device=device)
            result = yield from _run(scratch.benchmark(bench, current), token, outer)
            token.check()
            out["benchmark"] = result.to_json(samples=False)
        elif isinstance(step, ExportStep):
            out.update((yield from _run(scratch.export(step.path, current, step.format,
                                                       step.opset), token, outer)))
        if depth == 0:
            run.steps.append({"step": i + 1, "kind": kind, "summary": describe(step),
                              "variant": scratch.workspace.get(current).name,
                              "variant_id": current, **out})
    return current


def _run(task: Task[Any], token: CancelToken, outer: Task[Any]) -> Job[Any]:
    """Run one Session task inside the replay's job and commit it to the scratch session."""
    task.report = lambda p: outer.report(p)
    result = yield from task.job(token)
    return task.commit(result)
