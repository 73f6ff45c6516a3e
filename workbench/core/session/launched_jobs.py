"""Distillation and iterative prune-and-fine-tune in several processes from the window.

A distillation is one launched recipe: the student, then a distill step whose teacher is the
window's own teacher (its lineage, or the file it is written to when that lineage trains, so
the workers never train another teacher). Prune-and-fine-tune keeps its loop here: each
round prunes in this process, fine-tunes in `nproc` launched processes and is scored here
against the budget. Curves come live from rank 0; Stop terminates the launcher, which stops
every rank.
"""

from __future__ import annotations

from typing import Any

from workbench.core.errors import InvalidParameterError
from workbench.core.jobs import CancelToken, Job
from workbench.core.session.launched import (
    collect,
    launched_recipe,
    launched_train,
    run_folder,
    start_recipe,
    student_recipe,
    train_params,
    train_step,
    trained_child,
)


def launched_task(session: Any, mode: str, dataset: str, config: Any,
                  options: dict[str, Any]) -> Any:
    """The Train tab's request (`mode` train, distill or prune) in `options["processes"]`
    processes, as a Task."""
    from workbench.core.session.launched import launched_train_task

    nproc = int(options["processes"])
    if mode == "distill":
        return launched_distill_task(session, dataset, config, nproc,
                                     options.get("teacher") or "", options["temperature"],
                                     options["alpha"], bool(options.get("transfer")))
    if mode == "prune":
        return launched_prune_task(session, dataset, config, nproc, options["rounds"],
                                   options["step"], options["budget"])
    return launched_train_task(session, dataset, config, nproc)


def launched_distill_task(session: Any, dataset: str, config: Any, nproc: int,
                          teacher_id: str, temperature: float = 4.0, alpha: float = 0.7,
                          transfer: bool = False, variant_id: str | None = None) -> Any:
    """A Task that distills `teacher_id` into the selected variant in `nproc` processes;
    the commit adds the student (with rank 0's curves)."""
    from workbench.core.graph.analysis import analyse
    from workbench.core.session.session import Task
    from workbench.core.train.distill import _lineage

    variant = session.entry(variant_id).analysis.variant
    if teacher_id not in session.workspace:
        raise InvalidParameterError("Open or make a teacher variant first.")
    teacher = session.workspace.get(teacher_id).analysis.variant
    if teacher.id == variant.id:
        raise InvalidParameterError("A variant cannot be its own teacher.")
    if temperature <= 0 or not 0 <= alpha <= 1:
        raise InvalidParameterError("The temperature must be positive and alpha in [0, 1].")
    config.validate()
    folder = run_folder(variant, nproc)
    history: list[dict[str, Any]] = []

    def job(token: CancelToken) -> Job[Any]:
        body, weights = student_recipe(variant, folder)
        body["steps"].append({"distill": {
            "dataset": dataset, "teacher": _nested(start_recipe(teacher, folder)),
            "temperature": temperature, "alpha": alpha, "transfer": transfer,
            **train_params(config)}})
        output = yield from collect(launched_recipe(body, config.epochs, nproc, folder,
                                                    token, device=config.device,
                                                    start_weights=weights), history)
        step = train_step(config, dataset, alpha=alpha, temperature=temperature,
                          transfer=transfer, teacher=_lineage(teacher))
        return (yield from analyse(trained_child(variant, output, f"{variant.name}·distilled",
                                                 step)))

    def commit(analysis: Any) -> Any:
        return session._add(analysis, {"history": history})

    return Task(f"Distilling {teacher.name} into {variant.name} in {nproc} processes", job,
                commit)


def launched_prune_task(session: Any, dataset: str, config: Any, nproc: int,
                        rounds: int = 4, step: float = 0.2, budget: float = 0.01,
                        variant_id: str | None = None) -> Any:
    """A Task running iterative prune-and-fine-tune with every fine-tuning in `nproc`
    processes; the commit adds one variant per round."""
    from workbench.core.graph.analysis import analyse
    from workbench.core.session.session import Task
    from workbench.core.session.use_train import _load
    from workbench.core.train.distill import prune_finetune
    from workbench.core.train.training import TrainResult

    variant = session.entry(variant_id).analysis.variant
    if rounds < 1 or not 0 < step < 1 or not 0 <= budget <= 1:
        raise InvalidParameterError("rounds must be at least 1, the step in (0, 1) and "
                                    "the budget in [0, 1].")
    config.validate()
    folder = run_folder(variant, nproc)

    def job(token: CancelToken) -> Job[Any]:
        data = yield from _load(dataset, variant, config.seed)
        done = 0

        def finetune(pruned: Any, name: str) -> Job[Any]:
            nonlocal done
            done += 1
            history: list[dict[str, Any]] = []
            output = yield from collect(launched_train(
                pruned, dataset, config, nproc, folder / f"round{done}", token), history)
            return TrainResult(trained_child(pruned, output, name,
                                             train_step(config, dataset)), history)

        schedule = yield from prune_finetune(variant, data, rounds, step, config, budget,
                                             token, finetune)
        outs = []
        for r in schedule.rounds:
            outs.append(((yield from analyse(r.variant)), r.accuracy))
        return outs

    def commit(outs: list[tuple[Any, float]]) -> list[Any]:
        return [session._add(a, {"accuracy": acc}) for a, acc in outs]

    return Task(f"Prune-and-fine-tune {variant.name} in {nproc} processes", job, commit,
                graceful=True)


def _nested(body: dict[str, Any]) -> dict[str, Any]:
    """A recipe's JSON as a nested teacher holds it (no version)."""
    return {k: v for k, v in body.items() if k != "workbench_recipe"}
